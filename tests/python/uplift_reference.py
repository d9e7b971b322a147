"""The reference for crmbet's campaign statistics (crates/crmbet-app/tests/uplift.rs).

Reads JSON from stdin: {"proportions": [[x_t, n_t, x_c, n_c], ...],
"means": [[treatment values], [control values]]} and prints, per proportion case,
[difference, ci_low, ci_high, p_value] from statsmodels (Wald interval with the unpooled
standard error; two-sided z-test with the pooled one), and for the means the difference
with its Welch (unequal variances) normal interval and z-test p-value.
"""

import json
import sys

from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW


def main():
    request = json.load(sys.stdin)
    proportions = []
    for x_t, n_t, x_c, n_c in request["proportions"]:
        low, high = confint_proportions_2indep(
            x_t, n_t, x_c, n_c, method="wald", compare="diff", alpha=0.05
        )
        _, p_value = proportions_ztest([x_t, x_c], [n_t, n_c])
        proportions.append([x_t / n_t - x_c / n_c, float(low), float(high), float(p_value)])
    treatment, control = request["means"]
    compare = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    low, high = compare.zconfint_diff(alpha=0.05, usevar="unequal")
    _, p_value = compare.ztest_ind(usevar="unequal")
    difference = sum(treatment) / len(treatment) - sum(control) / len(control)
    json.dump(
        {"proportions": proportions, "means": [difference, float(low), float(high), float(p_value)]},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
