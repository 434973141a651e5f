"""The human judge: perceptibility studies people take in a browser, made from a run directory, and their
analysis (detection rates against chance, between methods, and the automatic judges' agreement with
people). ``make`` writes the page, ``analyze`` reads the answers, ``simulate`` makes answers of simulated
participants (for planning and for the worked example; always labelled a simulation)."""
