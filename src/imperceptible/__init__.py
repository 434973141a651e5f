"""imperceptible: human-imperceptible adversarial attacks, their perceptual evaluation,
DRO adversarial training and group-fairness hypothesis tests.

Layers (imports only go downward)::

    validation, weights   errors, input checks, local weight files
    costs                 perceptual distances: function + nn.Module, per-sample (N,) output
    models                classifier wrappers, small nets, pretrained loaders, training loop
    data                  datasets by name, GDP table
    attacks               one algorithm per file; a base class owns validate -> run -> clip -> result
    defenses              JPEG, bit-depth reduction
    evaluate              distances, success, saliency, defenses over attack results
    runs                  run directories, per-sample store, benchmarks, plots, reports
    cli                   the ``imperceptible`` command
"""

__version__ = "0.3.0"
