"""GDP per capita by country: the gapminder table shipped with plotly (142 countries, 1952-2007)."""

from __future__ import annotations

import pandas as pd

from ..errors import MSG_PARAM, ParameterError


def gdp_table(year: int = 2007) -> pd.DataFrame:
    """Columns ``country, continent, iso_alpha, gdp_per_capita, log_gdp, pop`` for ``year``."""
    from plotly.express.data import gapminder

    df = gapminder()
    years = sorted(df["year"].unique())
    if year not in years:
        raise ParameterError.of(MSG_PARAM, name="year", expected=f"one of {years}", got=year)
    d = df[df["year"] == year][["country", "continent", "iso_alpha", "gdpPercap", "pop"]].copy()
    d = d.rename(columns={"gdpPercap": "gdp_per_capita"})
    import numpy as np

    d["log_gdp"] = np.log(d["gdp_per_capita"])
    return d.sort_values("country").reset_index(drop=True)
