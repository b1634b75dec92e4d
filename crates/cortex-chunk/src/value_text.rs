//! Sample values as text, the way the corpus ground truth and Go tools print them.

use crate::STALE_NAN_BITS;

/// `"stale"` for the stale marker, `"NaN"` for any other NaN, else Go's `%g`.
pub fn value_text(v: f64) -> String {
    if v.to_bits() == STALE_NAN_BITS {
        "stale".into()
    } else if v.is_nan() {
        "NaN".into()
    } else {
        go_format_g(v)
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: shortest round-trip digits, exponent
/// form when the decimal exponent is < -4 or >= 6 (Go's rule for shortest `%g`).
pub fn go_format_g(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v.is_nan() {
        return "NaN".into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits in scientific form.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("scientific form");
    let exp: i32 = exp.parse().expect("exponent");
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    if exp < 0 {
        return format!("{sign}0.{}{}", "0".repeat((-exp - 1) as usize), digits);
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        format!("{sign}{}{}", digits, "0".repeat(int_len - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_format() {
        for (v, s) in [
            (10.0, "10"),
            (1e308, "1e+308"),
            (5e-324, "5e-324"),
            (-1.7976931348623157e308, "-1.7976931348623157e+308"),
            (9007199254740993.0, "9.007199254740992e+15"),
            (1.2e17, "1.2e+17"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.1256794007427367e-05, "2.1256794007427367e-05"),
            (-0.0, "-0"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(go_format_g(v), s, "{v}");
        }
        assert_eq!(value_text(f64::from_bits(STALE_NAN_BITS)), "stale");
        assert_eq!(value_text(f64::NAN), "NaN");
    }
}
