//! Normalisation tables: what a bank prompt says, and what the voice must read.
#![allow(clippy::unwrap_used)]

use chrono::NaiveDate;
use tts::{Currency, normalize, speak_date, speak_digits, speak_money, speak_time, speak_year};

fn check(cases: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (input, expected) in cases {
        let got = normalize(input);
        if got != *expected {
            failures.push(format!(
                "  {input:?}\n    got      {got:?}\n    expected {expected:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn money() {
    check(&[
        (
            "$1,250.50",
            "one thousand two hundred fifty dollars and fifty cents",
        ),
        ("$1.00", "one dollar"),
        ("$0.99", "ninety-nine cents"),
        ("$0.01", "one cent"),
        ("$20", "twenty dollars"),
        ("$5.5", "five dollars and fifty cents"),
        ("€20", "twenty euros"),
        ("€1,000,000", "one million euros"),
        ("£5.99", "five pounds and ninety-nine pence"),
        ("£1.01", "one pound and one penny"),
        ("-$45.10", "minus forty-five dollars and ten cents"),
        ("$2.5 million", "two point five million dollars"),
        ("$3 billion", "three billion dollars"),
        ("250 USD", "two hundred fifty dollars"),
        ("99.95 EUR", "ninety-nine euros and ninety-five cents"),
        (
            "You owe $12,345.67 today.",
            "You owe twelve thousand three hundred forty-five dollars and sixty-seven cents today.",
        ),
        (
            "A fee of $35 applies.",
            "A fee of thirty-five dollars applies.",
        ),
        ("$20/mo", "twenty dollars per month"),
    ]);
}

#[test]
fn money_helper() {
    let cases: &[(f64, Currency, &str)] = &[
        (
            1250.50,
            Currency::Usd,
            "one thousand two hundred fifty dollars and fifty cents",
        ),
        (0.1 + 0.2, Currency::Usd, "thirty cents"),
        (1.0, Currency::Eur, "one euro"),
        (2.015, Currency::Gbp, "two pounds and two pence"),
        (-3.0, Currency::Usd, "minus three dollars"),
        (0.0, Currency::Usd, "zero dollars"),
        (1_000_000.0, Currency::Usd, "one million dollars"),
    ];
    for (amount, currency, expected) in cases {
        assert_eq!(
            speak_money(*amount, *currency),
            *expected,
            "{amount} {currency:?}"
        );
    }
}

#[test]
fn dates() {
    check(&[
        ("2026-03-15", "March fifteenth, twenty twenty-six"),
        ("03/15/2026", "March fifteenth, twenty twenty-six"),
        // Ambiguous slashed dates are en-US month/day; a first field over 12 must be the day.
        ("04/05/2026", "April fifth, twenty twenty-six"),
        ("15/03/2026", "March fifteenth, twenty twenty-six"),
        ("3/1/26", "March first, twenty twenty-six"),
        ("2000-01-01", "January first, two thousand"),
        ("2009-12-31", "December thirty-first, two thousand nine"),
        ("1999-07-04", "July fourth, nineteen ninety-nine"),
        ("March 15", "March fifteenth"),
        ("March 15th", "March fifteenth"),
        ("Mar. 3, 2026", "March third, twenty twenty-six"),
        ("Sept. 22", "September twenty-second"),
        ("15 March 2026", "March fifteenth, twenty twenty-six"),
        ("the 1st of June", "the first of June"),
        (
            "on the 2nd of May, 2026",
            "on the second of May, twenty twenty-six",
        ),
        (
            "due on 2026-02-28.",
            "due on February twenty-eighth, twenty twenty-six.",
        ),
        // Not a real date: read the digits rather than invent one.
        ("2026-02-30", "two zero two six, zero two, three zero"),
    ]);
}

#[test]
fn date_helpers() {
    let d = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
    assert_eq!(speak_date(d), "March fifteenth, twenty twenty-six");
    let d = NaiveDate::from_ymd_opt(2031, 11, 22).unwrap();
    assert_eq!(speak_date(d), "November twenty-second, twenty thirty-one");
    for (year, expected) in [
        (2026, "twenty twenty-six"),
        (2000, "two thousand"),
        (2005, "two thousand five"),
        (2010, "twenty ten"),
        (1984, "nineteen eighty-four"),
        (1900, "nineteen hundred"),
        (1905, "nineteen oh five"),
        (2100, "twenty-one hundred"),
    ] {
        assert_eq!(speak_year(year), expected, "{year}");
    }
}

#[test]
fn times() {
    check(&[
        ("3:30 pm", "three thirty P M"),
        ("3:30 PM", "three thirty P M"),
        ("3:30pm", "three thirty P M"),
        ("9:05 a.m.", "nine oh five A M."),
        ("Call at 10 am", "Call at ten A M"),
        ("before 5 p.m. today", "before five P M today"),
        ("12:00 pm", "twelve P M"),
        ("15:30", "three thirty P M"),
        ("00:15", "twelve fifteen A M"),
        ("08:00", "eight A M"),
    ]);
    assert_eq!(speak_time(13, 0, None).unwrap(), "one P M");
    assert_eq!(speak_time(25, 0, None), None);
    assert_eq!(speak_time(13, 0, Some(true)), None);
}

#[test]
fn identifiers_are_read_digit_by_digit() {
    check(&[
        ("card ending 4217", "card ending four two one seven"),
        ("card ending in 4217", "card ending in four two one seven"),
        (
            "the last four digits are 0042",
            "the last four digits are zero zero four two",
        ),
        (
            "account number 12345678",
            "account number one two three four, five six seven eight",
        ),
        (
            "Account: 987654321",
            "Account: nine eight seven six, five four three two one",
        ),
        ("PIN 1234", "PIN one two three four"),
        (
            "reference number 55501",
            "reference number five five five zero one",
        ),
        ("No. 4821", "number four eight two one"),
        ("#4821", "number four eight two one"),
        (
            "4111 1111 1111 1111",
            "four one one one, one one one one, one one one one, one one one one",
        ),
        (
            "4111-1111-1111-1111",
            "four one one one, one one one one, one one one one, one one one one",
        ),
        ("**** **** **** 4217", "ending in four two one seven"),
        ("card ****4217", "card ending in four two one seven"),
        (
            "(800) 555-0199",
            "eight zero zero, five five five, zero one nine nine",
        ),
        (
            "800-555-0199",
            "eight zero zero, five five five, zero one nine nine",
        ),
        ("code AB12345", "code A B one two, three four five"),
        (
            "Your case is 20260315001.",
            "Your case is two zero two six, zero three one five, zero zero one.",
        ),
        (
            "routing number 021000021",
            "routing number zero two one zero, zero zero zero two one",
        ),
    ]);
}

#[test]
fn digit_helper() {
    for (code, expected) in [
        ("4217", "four two one seven"),
        ("12345", "one two three four five"),
        ("123456", "one two three four, five six"),
        ("123456789", "one two three four, five six seven eight nine"),
        ("4111 1111", "four one one one, one one one one"),
        ("ab-12", "A B, one two"),
        ("", ""),
    ] {
        assert_eq!(speak_digits(code), expected, "{code:?}");
    }
}

#[test]
fn numbers_percentages_ordinals() {
    check(&[
        ("15th", "fifteenth"),
        ("your 1st payment", "your first payment"),
        ("the 22nd", "the twenty-second"),
        ("3rd", "third"),
        ("the 100th call", "the one hundredth call"),
        // No British "and", in ordinals either.
        ("the 1001st call", "the one thousand first call"),
        ("12%", "twelve percent"),
        ("4.5%", "four point five percent"),
        ("19.99 percent", "nineteen point nine nine percent"),
        ("APR of 24.9%", "A P R of twenty-four point nine percent"),
        ("3 payments", "three payments"),
        ("1,500 points", "one thousand five hundred points"),
        ("2500 points", "two thousand five hundred points"),
        ("0.5", "zero point five"),
        ("42", "forty-two"),
        ("0", "zero"),
        ("101", "one hundred one"),
        ("1001", "one thousand one"),
        ("within 30 days", "within thirty days"),
    ]);
}

#[test]
fn abbreviations_and_symbols() {
    check(&[
        ("Mr. Smith", "Mister Smith"),
        ("Mrs. Jones", "Missus Jones"),
        ("Ms. Lee", "Miz Lee"),
        ("Dr. Brown", "Doctor Brown"),
        ("approx. $40", "approximately forty dollars"),
        (
            "123 Main St. Apt 4",
            "one hundred twenty-three Main Street Apt four",
        ),
        ("St. Louis", "Saint Louis"),
        ("Smith & Sons Inc.", "Smith and Sons Incorporated"),
        ("fees, taxes, etc.", "fees, taxes, et cetera"),
        ("an ATM card", "an A T M card"),
        ("your ID", "your I D"),
        ("Acct. 12345", "account one two three four five"),
        ("e.g. online", "for example online"),
        ("  lots   of   space  ", "lots of space"),
        ("Hello , world !", "Hello, world!"),
    ]);
}

#[test]
fn whole_prompts() {
    check(&[
        (
            "Hello Mr. Smith, this is First Bank. Your payment of $1,250.50 for the card ending 4217 was due on 03/15/2026.",
            "Hello Mister Smith, this is First Bank. Your payment of one thousand two hundred fifty dollars and fifty cents for the card ending four two one seven was due on March fifteenth, twenty twenty-six.",
        ),
        (
            "Can we call you back at 3:30 pm on March 16th?",
            "Can we call you back at three thirty P M on March sixteenth?",
        ),
        (
            "Your balance is €20.00 and your APR is 19.9%.",
            "Your balance is twenty euros and your A P R is nineteen point nine percent.",
        ),
    ]);
}

#[test]
fn normalised_text_has_no_digits_left() {
    let prompts = [
        "Pay $5 by 2026-04-01 at 9:00 am or call 800-555-0199 ext. 12, ref. 7781-22.",
        "Your 2nd notice: £1,234.56 is 45 days late; 3.5% interest applies from 15/04/2026.",
    ];
    for p in prompts {
        let n = normalize(p);
        assert!(!n.chars().any(|c| c.is_ascii_digit()), "{p:?} -> {n:?}");
    }
}
