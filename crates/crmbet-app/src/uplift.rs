//! The statistics of campaign results: treatment against control.
//!
//! Definitions (the ones `statsmodels.stats.proportion` uses, checked against it in
//! `tests/uplift.rs`):
//! - conversion uplift `p_t - p_c`; its 95% interval is Wald's with the unpooled standard
//!   error `sqrt(p_t(1-p_t)/n_t + p_c(1-p_c)/n_c)`
//!   (`confint_proportions_2indep(method="wald", compare="diff")`);
//! - its p-value is the two-sided z-test with the pooled standard error
//!   `sqrt(p(1-p)(1/n_t + 1/n_c))`, `p = (x_t + x_c)/(n_t + n_c)` (`proportions_ztest`);
//! - revenue per player: the difference of means with Welch's standard error, a normal
//!   interval and a two-sided z p-value (large-sample; campaign groups have hundreds of
//!   players or more).
//!
//! Where a standard error is 0 (no variation at all), the interval is the difference
//! itself and the p-value is 1 when the difference is 0, else 0.

/// The 0.975 quantile of the standard normal distribution (a 95% two-sided interval).
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A difference of treatment over control with its 95% interval and p-value.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    pub difference: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p_value: f64,
}

/// The conversion uplift of `treatment_converted` of `treatment_players` over
/// `control_converted` of `control_players`; `None` when a group is empty.
///
/// ```
/// let estimate = crmbet_app::uplift::conversion_uplift(120, 1000, 80, 1000).unwrap();
/// assert!((estimate.difference - 0.04).abs() < 1e-12);
/// ```
pub fn conversion_uplift(
    treatment_converted: u64,
    treatment_players: u64,
    control_converted: u64,
    control_players: u64,
) -> Option<Estimate> {
    if treatment_players == 0 || control_players == 0 {
        return None;
    }
    let (x_t, n_t) = (treatment_converted as f64, treatment_players as f64);
    let (x_c, n_c) = (control_converted as f64, control_players as f64);
    let (p_t, p_c) = (x_t / n_t, x_c / n_c);
    let difference = p_t - p_c;
    let unpooled = (p_t * (1.0 - p_t) / n_t + p_c * (1.0 - p_c) / n_c).sqrt();
    let pooled_rate = (x_t + x_c) / (n_t + n_c);
    let pooled = (pooled_rate * (1.0 - pooled_rate) * (1.0 / n_t + 1.0 / n_c)).sqrt();
    Some(Estimate {
        difference,
        ci_low: difference - Z_95 * unpooled,
        ci_high: difference + Z_95 * unpooled,
        p_value: two_sided_p_value(difference, pooled),
    })
}

/// The difference of the means of `treatment` and `control` (one value per player);
/// `None` when a group has fewer than two players.
pub fn mean_difference(treatment: &[f64], control: &[f64]) -> Option<Estimate> {
    if treatment.len() < 2 || control.len() < 2 {
        return None;
    }
    let (mean_t, variance_t) = mean_and_variance(treatment);
    let (mean_c, variance_c) = mean_and_variance(control);
    let difference = mean_t - mean_c;
    let standard_error =
        (variance_t / treatment.len() as f64 + variance_c / control.len() as f64).sqrt();
    Some(Estimate {
        difference,
        ci_low: difference - Z_95 * standard_error,
        ci_high: difference + Z_95 * standard_error,
        p_value: two_sided_p_value(difference, standard_error),
    })
}

/// The mean and the sample variance (n - 1 in the denominator).
fn mean_and_variance(values: &[f64]) -> (f64, f64) {
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    let squares: f64 = values.iter().map(|value| (value - mean).powi(2)).sum();
    (mean, squares / (count - 1.0))
}

/// `2 * P(Z > |difference / standard_error|)` for a standard normal `Z`.
fn two_sided_p_value(difference: f64, standard_error: f64) -> f64 {
    if standard_error <= 0.0 || !standard_error.is_finite() {
        return if difference == 0.0 { 1.0 } else { 0.0 };
    }
    let z = (difference / standard_error).abs();
    // P(Z > z) = erfc(z / sqrt 2) / 2, so the two-sided value is erfc(z / sqrt 2).
    libm::erfc(z / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand: 120/1000 against 80/1000.
    /// p_t = 0.12, p_c = 0.08, difference 0.04;
    /// unpooled se = sqrt(0.12*0.88/1000 + 0.08*0.92/1000) = sqrt(0.0001792) = 0.0133866;
    /// interval 0.04 ± 1.959964 * 0.0133866 = [0.0137628, 0.0662372];
    /// pooled p = 0.1, se = sqrt(0.1*0.9*0.002) = 0.0134164, z = 2.9814240,
    /// p-value = erfc(2.9814240 / sqrt 2) = 0.0028691.
    #[test]
    fn conversion_uplift_matches_the_hand_computed_example() {
        let estimate = conversion_uplift(120, 1000, 80, 1000).expect("both groups have players");
        let cases = [
            ("difference", estimate.difference, 0.04),
            ("ci_low", estimate.ci_low, 0.013_762_8),
            ("ci_high", estimate.ci_high, 0.066_237_2),
            ("p_value", estimate.p_value, 0.002_869_1),
        ];
        for (name, got, expected) in cases {
            assert!((got - expected).abs() < 5e-7, "{name}: {got} != {expected}");
        }
    }

    #[test]
    fn degenerate_groups() {
        assert_eq!(conversion_uplift(1, 0, 1, 10), None);
        let none_converted = conversion_uplift(0, 10, 0, 10).expect("groups have players");
        assert_eq!(none_converted.p_value, 1.0);
        assert_eq!(none_converted.ci_low, 0.0);
        assert_eq!(mean_difference(&[1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn mean_difference_of_constant_groups_has_no_spread() {
        let estimate = mean_difference(&[2.0, 2.0, 2.0], &[1.0, 1.0]).expect("two each");
        assert_eq!(estimate.difference, 1.0);
        assert_eq!(estimate.p_value, 0.0);
    }
}
