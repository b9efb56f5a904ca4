//! Range checks of configuration values, written once for every config in the workspace (QC,
//! GBLUP, the trainer, each neural architecture), so that every out-of-range value is reported the
//! same way: a typed [`ConfigError`] naming the key, the value and what is allowed.
//!
//! Each helper returns `Ok(())` when the value is allowed; NaN is never allowed.

use crate::error::CoreError;

/// A configuration value outside its allowed range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key} = {value} is out of range: {allowed}")]
pub struct ConfigError {
    /// The key as the user writes it (`train.learning_rate`, `dropout1`, `l2_kernel[2]`).
    pub key: String,
    /// The value given.
    pub value: String,
    /// What would be allowed (`must be > 0`, `must be within [0, 1)`).
    pub allowed: String,
}

impl ConfigError {
    /// An error for `key = value`, which must be `allowed`.
    pub fn new(key: &str, value: impl ToString, allowed: impl Into<String>) -> Self {
        ConfigError { key: key.to_string(), value: value.to_string(), allowed: allowed.into() }
    }

    /// The same error, with a hint appended to what is allowed (`0 turns it off`).
    #[must_use]
    pub fn hint(mut self, hint: &str) -> Self {
        self.allowed = format!("{}; {hint}", self.allowed);
        self
    }
}

impl From<ConfigError> for CoreError {
    fn from(e: ConfigError) -> Self {
        CoreError::Config { name: e.key, value: e.value, reason: e.allowed }
    }
}

fn require(ok: bool, key: &str, value: impl ToString, allowed: &str) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(ConfigError::new(key, value, allowed)) }
}

/// Finite and > 0 (learning rates, initialisation scales).
pub fn positive(key: &str, value: f64) -> Result<(), ConfigError> {
    require(value.is_finite() && value > 0.0, key, value, "must be > 0")
}

/// Finite and >= 0 (penalties, weight decay, improvement thresholds).
pub fn non_negative(key: &str, value: f64) -> Result<(), ConfigError> {
    require(value.is_finite() && value >= 0.0, key, value, "must be >= 0")
}

/// Finite (the ends of a search range).
pub fn finite(key: &str, value: f64) -> Result<(), ConfigError> {
    require(value.is_finite(), key, value, "must be finite")
}

/// Within `[0, 1)` (momenta, Adam's betas, decay factors).
pub fn fraction(key: &str, value: f64) -> Result<(), ConfigError> {
    require((0.0..1.0).contains(&value), key, value, "must be within [0, 1)")
}

/// Within `(0, 1)` (Adam's epsilon).
pub fn open_unit(key: &str, value: f64) -> Result<(), ConfigError> {
    require(value > 0.0 && value < 1.0, key, value, "must be within (0, 1)")
}

/// Within `(0, 1]` (a share of variance to keep).
pub fn positive_fraction(key: &str, value: f64) -> Result<(), ConfigError> {
    require(value > 0.0 && value <= 1.0, key, value, "must be within (0, 1]")
}

/// Within the closed interval `[low, high]` (QC thresholds).
pub fn within(key: &str, value: f64, low: f64, high: f64) -> Result<(), ConfigError> {
    require((low..=high).contains(&value), key, value, &format!("must be within [{low}, {high}]"))
}

/// A dropout rate: within `[0, 1)`.
pub fn rate(key: &str, value: f64) -> Result<(), ConfigError> {
    require((0.0..1.0).contains(&value), key, value, "a dropout rate must be within [0, 1)")
}

/// A count of at least `min` (layer widths, epochs, grid points).
pub fn at_least(key: &str, value: usize, min: usize) -> Result<(), ConfigError> {
    require(value >= min, key, value, &format!("must be at least {min}"))
}

/// Strictly below another setting (`low_key = low` < `high_key = high`, the ends of a range).
pub fn below(low_key: &str, low: f64, high_key: &str, high: f64) -> Result<(), ConfigError> {
    require(low < high, low_key, low, &format!("must be below {high_key} = {high}"))
}

/// A setting that must divide another (`key = value` divides `of_key = of`: attention heads
/// dividing the model width, patches tiling a length). Zero never divides.
pub fn divides(key: &str, value: usize, of_key: &str, of: usize) -> Result<(), ConfigError> {
    require(value > 0 && of.is_multiple_of(value), key, value, &format!("must divide {of_key} = {of}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_helper_accepts_its_range_and_names_key_value_and_range() {
        assert!(positive("lr", 1e-3).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(positive("lr", bad).is_err(), "{bad}");
        }
        assert!(non_negative("l2", 0.0).is_ok() && non_negative("l2", f64::INFINITY).is_err());
        assert!(fraction("m", 0.0).is_ok() && fraction("m", 1.0).is_err() && fraction("m", f64::NAN).is_err());
        assert!(open_unit("e", 0.5).is_ok() && open_unit("e", 0.0).is_err() && open_unit("e", 1.0).is_err());
        assert!(positive_fraction("v", 1.0).is_ok() && positive_fraction("v", 0.0).is_err());
        assert!(within("maf", 0.5, 0.0, 0.5).is_ok() && within("maf", 0.7, 0.0, 0.5).is_err());
        assert!(at_least("epochs", 1, 1).is_ok() && at_least("grid", 2, 3).is_err());
        assert!(finite("x", -3.0).is_ok() && finite("x", f64::NEG_INFINITY).is_err());
        assert!(below("lo", 1.0, "hi", 2.0).is_ok() && below("lo", 2.0, "hi", 2.0).is_err());
        assert!(divides("heads", 4, "width", 64).is_ok() && divides("heads", 0, "width", 64).is_err());
        assert_eq!(
            divides("heads", 3, "width", 64).unwrap_err().to_string(),
            "heads = 3 is out of range: must divide width = 64"
        );

        let e = rate("dropout", 1.5).unwrap_err();
        assert_eq!(e, ConfigError::new("dropout", "1.5", "a dropout rate must be within [0, 1)"));
        assert_eq!(e.to_string(), "dropout = 1.5 is out of range: a dropout rate must be within [0, 1)");
        assert_eq!(at_least("epochs", 0, 1).unwrap_err().to_string(), "epochs = 0 is out of range: must be at least 1");
        assert_eq!(
            fraction("f", 2.0).unwrap_err().hint("0 turns it off").allowed,
            "must be within [0, 1); 0 turns it off"
        );
    }

    #[test]
    fn converts_to_the_core_error_keeping_its_message() {
        let e: CoreError = within("min_maf", 0.7, 0.0, 0.5).unwrap_err().into();
        assert_eq!(e.to_string(), "invalid setting min_maf = 0.7: must be within [0, 0.5]");
    }
}
