use super::*;

#[test]
fn evaluates_with_precedence_and_associativity() {
    let cases = [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("10 - 4 - 3", "3"),   // left-associative
        ("100 / 10 / 5", "2"), // left-associative
        ("2 ^ 3 ^ 2", "512"),  // right-associative: 2^(3^2)
        ("2 ** 3", "8"),
        ("-2 ^ 2", "-4"), // power binds tighter than unary minus
        ("2 ^ -1", "0.5"),
        ("--3", "3"),
        ("7 % 4", "3"),
        ("-7 % 4", "-3"),
        ("1.5e3 + .5", "1500.5"),
        ("6.02E23", "6.02e23"),
        ("(4.31 - 2.96) / 2.96 * 100", "45.6081081081"),
        ("0.1 + 0.2", "0.3"),
        ("sqrt(16) + abs(-2)", "6"),
        ("round(2.5) + floor(1.9) + ceil(1.1)", "6"),
        ("round(45.6081, 2)", "45.61"),
        ("min(3, 1, 2) + max(4, 9)", "10"),
        ("ln(e) + log10(1000) + exp(0)", "5"),
        ("2 * pi", "6.28318530718"),
        ("1 / 3", "0.333333333333"),
        ("1e-9", "1e-9"),
        ("-0", "0"),
        ("3 × 4 − 2", "10"),
    ];
    for (expression, want) in cases {
        assert_eq!(calculate(expression).as_deref(), Ok(want), "{expression}");
    }
}

#[test]
fn refuses_what_is_not_arithmetic() {
    let cases: [(&str, &str); 14] = [
        ("1 / 0", "division by zero"),
        ("5 % (2 - 2)", "division by zero"),
        (
            "foo + 1",
            "unknown name `foo`; known: pi, e, sqrt, abs, round, floor, ceil, min, max, ln, log10, exp",
        ),
        (
            "1,000 + 1",
            "unexpected `,` at position 2; write numbers without thousands separators (1000, not 1,000)",
        ),
        ("", "the expression is empty"),
        ("1 +", "unexpected end of expression at position 4"),
        (
            "(1 + 2",
            "unexpected end of expression at position 7; expected `)`",
        ),
        ("1 2", "unexpected `2` at position 3"),
        ("2 $ 3", "unexpected `$` at position 3"),
        ("sqrt(-4)", "sqrt is undefined for -4"),
        ("ln(0)", "ln is undefined for 0"),
        ("max()", "unexpected `)` at position 5"),
        ("sqrt(1, 2)", "`sqrt` takes 1 argument(s), got 2"),
        ("10 ^ 400", "the result is not a finite number"),
    ];
    for (expression, want) in cases {
        match calculate(expression) {
            Err(e) => assert_eq!(e.to_string(), want, "{expression}"),
            Ok(v) => panic!("{expression} gave {v}"),
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert_eq!(calculate(&deep), Err(CalcError::TooDeep));
    let minus = format!("{}1", "-".repeat(10_000));
    assert_eq!(calculate(&minus), Err(CalcError::TooDeep));
    let fine = format!("{}1{}", "(".repeat(30), ")".repeat(30));
    assert_eq!(calculate(&fine).as_deref(), Ok("1"));
}

#[test]
fn formats_without_noise() {
    let cases = [
        (3.0, "3"),
        (45.609, "45.609"),
        (-2.5, "-2.5"),
        (1e20, "1e20"),
        (123456789.0, "123456789"),
    ];
    for (value, want) in cases {
        assert_eq!(format_number(value), want, "{value}");
    }
}
