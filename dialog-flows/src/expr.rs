//! Conditions and computed values: a small, total expression language.
//!
//! ```text
//! lead.days_overdue >= 30 and not slots.disputed
//! slots.amount < lead.amount_due / 2
//! slots.pay_date <= today + 14
//! ```
//! Literals: numbers, 'text' or "text", true, false, null. Names: `lead.*`, `bank.*`, `slots.*`,
//! `vars.*`, `today`, `now`. Operators: `or`, `and`, `not`, `==`, `!=`, `<`, `<=`, `>`, `>=`,
//! `+`, `-`, `*`, `/`. Evaluation never fails: a type mismatch gives `null` (false in a condition),
//! and the validator catches names that cannot exist.

use crate::error::{Diagnostic, Pos};
use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    /// A dotted name, with its column offset in the source text.
    Path(Vec<String>, usize),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(Box<Expr>, Op, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

/// An expression and the text it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    pub source: String,
    pub pos: Pos,
    pub expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Sym(&'static str),
    LParen,
    RParen,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, (usize, String)> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let col = src[..at].chars().count();
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].1.is_ascii_digit() || chars[i].1 == '.') {
                i += 1;
            }
            let end = chars.get(i).map_or(src.len(), |c| c.0);
            let text = &src[chars[start].0..end];
            let n = text
                .parse::<f64>()
                .map_err(|_| (col, format!("`{text}` is not a number")))?;
            out.push((Tok::Num(n), col));
        } else if c == '\'' || c == '"' {
            let quote = c;
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i].1 != quote {
                s.push(chars[i].1);
                i += 1;
            }
            if i >= chars.len() {
                return Err((
                    col,
                    "this text is never closed with a matching quote".into(),
                ));
            }
            i += 1;
            out.push((Tok::Str(s), col));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].1.is_alphanumeric() || chars[i].1 == '_' || chars[i].1 == '.')
            {
                i += 1;
            }
            let end = chars.get(i).map_or(src.len(), |c| c.0);
            out.push((Tok::Ident(src[chars[start].0..end].to_string()), col));
        } else {
            let two: String = chars[i..chars.len().min(i + 2)]
                .iter()
                .map(|c| c.1)
                .collect();
            let sym = match two.as_str() {
                "==" => Some("=="),
                "!=" => Some("!="),
                "<=" => Some("<="),
                ">=" => Some(">="),
                "&&" => Some("and"),
                "||" => Some("or"),
                _ => None,
            };
            if let Some(s) = sym {
                out.push((Tok::Sym(s), col));
                i += 2;
                continue;
            }
            let tok = match c {
                '<' => Tok::Sym("<"),
                '>' => Tok::Sym(">"),
                '+' => Tok::Sym("+"),
                '-' => Tok::Sym("-"),
                '*' => Tok::Sym("*"),
                '/' => Tok::Sym("/"),
                '!' => Tok::Sym("not"),
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                '=' => return Err((col, "use `==` to compare, not `=`".into())),
                other => return Err((col, format!("`{other}` is not allowed in a condition"))),
            };
            out.push((tok, col));
            i += 1;
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<(Tok, usize)>,
    i: usize,
    end_col: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.0)
    }
    fn col(&self) -> usize {
        self.toks.get(self.i).map_or(self.end_col, |t| t.1)
    }
    fn eat_sym(&mut self, s: &str) -> bool {
        let hit = match self.peek() {
            Some(Tok::Sym(x)) => *x == s,
            Some(Tok::Ident(x)) => (s == "and" || s == "or" || s == "not") && x == s,
            _ => false,
        };
        if hit {
            self.i += 1;
        }
        hit
    }
    fn or(&mut self) -> Result<Expr, (usize, String)> {
        let mut l = self.and()?;
        while self.eat_sym("or") {
            l = Expr::Bin(Box::new(l), Op::Or, Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, (usize, String)> {
        let mut l = self.not()?;
        while self.eat_sym("and") {
            l = Expr::Bin(Box::new(l), Op::And, Box::new(self.not()?));
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Expr, (usize, String)> {
        if self.eat_sym("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, (usize, String)> {
        let l = self.sum()?;
        for (s, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat_sym(s) {
                return Ok(Expr::Bin(Box::new(l), op, Box::new(self.sum()?)));
            }
        }
        Ok(l)
    }
    fn sum(&mut self) -> Result<Expr, (usize, String)> {
        let mut l = self.term()?;
        loop {
            if self.eat_sym("+") {
                l = Expr::Bin(Box::new(l), Op::Add, Box::new(self.term()?));
            } else if self.eat_sym("-") {
                l = Expr::Bin(Box::new(l), Op::Sub, Box::new(self.term()?));
            } else {
                return Ok(l);
            }
        }
    }
    fn term(&mut self) -> Result<Expr, (usize, String)> {
        let mut l = self.unary()?;
        loop {
            if self.eat_sym("*") {
                l = Expr::Bin(Box::new(l), Op::Mul, Box::new(self.unary()?));
            } else if self.eat_sym("/") {
                l = Expr::Bin(Box::new(l), Op::Div, Box::new(self.unary()?));
            } else {
                return Ok(l);
            }
        }
    }
    fn unary(&mut self) -> Result<Expr, (usize, String)> {
        if self.eat_sym("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Expr, (usize, String)> {
        let col = self.col();
        let Some((tok, _)) = self.toks.get(self.i).cloned() else {
            return Err((col, "the condition ends where a value was expected".into()));
        };
        self.i += 1;
        Ok(match tok {
            Tok::Num(n) => Expr::Lit(Value::Number(n)),
            Tok::Str(s) => Expr::Lit(Value::Text(s)),
            Tok::Ident(name) => match name.as_str() {
                "true" => Expr::Lit(Value::Bool(true)),
                "false" => Expr::Lit(Value::Bool(false)),
                "null" => Expr::Lit(Value::Null),
                "and" | "or" | "not" => {
                    return Err((col, format!("`{name}` needs a value before and after it")));
                }
                _ => {
                    let parts: Vec<String> = name.split('.').map(str::to_string).collect();
                    if parts.iter().any(String::is_empty) {
                        return Err((col, format!("`{name}` is not a valid name")));
                    }
                    Expr::Path(parts, col)
                }
            },
            Tok::LParen => {
                let e = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err((self.col(), "a `(` is never closed".into()));
                }
                self.i += 1;
                e
            }
            Tok::RParen => return Err((col, "unexpected `)`".into())),
            Tok::Sym(s) => return Err((col, format!("unexpected `{s}`"))),
        })
    }
}

impl Expression {
    /// Parse `source`, found at `pos` in the flow file (`col_offset` is how far the text starts
    /// after `pos`, e.g. 1 for a quoted string).
    pub fn parse(source: &str, pos: Pos, col_offset: usize) -> Result<Expression, Diagnostic> {
        let at = |col: usize| Pos::new(pos.line, pos.col + col_offset + col);
        let toks = lex(source).map_err(|(c, m)| Diagnostic::new(at(c), "expression", m))?;
        if toks.is_empty() {
            return Err(Diagnostic::new(pos, "expression", "the condition is empty"));
        }
        let mut p = P {
            toks,
            i: 0,
            end_col: source.chars().count(),
        };
        let expr = p
            .or()
            .map_err(|(c, m)| Diagnostic::new(at(c), "expression", m))?;
        if p.i < p.toks.len() {
            return Err(Diagnostic::new(
                at(p.col()),
                "expression",
                "unexpected text after the end of the condition (missing `and`/`or`?)",
            ));
        }
        Ok(Expression {
            source: source.to_string(),
            pos: Pos::new(pos.line, pos.col + col_offset),
            expr,
        })
    }

    /// Every dotted name used, with its position in the file.
    pub fn names(&self) -> Vec<(Vec<String>, Pos)> {
        fn walk(e: &Expr, out: &mut Vec<(Vec<String>, usize)>) {
            match e {
                Expr::Lit(_) => {}
                Expr::Path(p, c) => out.push((p.clone(), *c)),
                Expr::Not(x) | Expr::Neg(x) => walk(x, out),
                Expr::Bin(a, _, b) => {
                    walk(a, out);
                    walk(b, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out);
        out.into_iter()
            .map(|(p, c)| (p, Pos::new(self.pos.line, self.pos.col + c)))
            .collect()
    }

    pub fn eval(&self, lookup: &dyn Fn(&[String]) -> Value) -> Value {
        eval(&self.expr, lookup)
    }
}

fn eval(e: &Expr, lookup: &dyn Fn(&[String]) -> Value) -> Value {
    match e {
        Expr::Lit(v) => v.clone(),
        Expr::Path(p, _) => lookup(p),
        Expr::Not(x) => Value::Bool(!eval(x, lookup).truthy()),
        Expr::Neg(x) => match eval(x, lookup) {
            Value::Number(n) => Value::Number(-n),
            _ => Value::Null,
        },
        Expr::Bin(a, Op::And, b) => {
            Value::Bool(eval(a, lookup).truthy() && eval(b, lookup).truthy())
        }
        Expr::Bin(a, Op::Or, b) => {
            Value::Bool(eval(a, lookup).truthy() || eval(b, lookup).truthy())
        }
        Expr::Bin(a, op, b) => binary(eval(a, lookup), *op, eval(b, lookup)),
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn binary(a: Value, op: Op, b: Value) -> Value {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (&a, &b) {
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::DateTime(y)) => Some(x.cmp(&y.date())),
        (Value::DateTime(x), Value::Date(y)) => Some(x.date().cmp(y)),
        (Value::Time(x), Value::Time(y)) => Some(x.cmp(y)),
        (Value::Text(x), Value::Text(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => match (as_number(&a), as_number(&b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => None,
        },
    };
    match op {
        Op::Eq => Value::Bool(ord == Some(Ordering::Equal)),
        Op::Ne => Value::Bool(ord != Some(Ordering::Equal)),
        Op::Lt => ord.map_or(Value::Null, |o| Value::Bool(o == Ordering::Less)),
        Op::Le => ord.map_or(Value::Null, |o| Value::Bool(o != Ordering::Greater)),
        Op::Gt => ord.map_or(Value::Null, |o| Value::Bool(o == Ordering::Greater)),
        Op::Ge => ord.map_or(Value::Null, |o| Value::Bool(o != Ordering::Less)),
        Op::Add | Op::Sub => {
            let sign = if op == Op::Add { 1.0 } else { -1.0 };
            match (&a, as_number(&b)) {
                (Value::Date(d), Some(n)) if n.fract() == 0.0 => d
                    .checked_add_signed(chrono::Duration::days((sign * n) as i64))
                    .map_or(Value::Null, Value::Date),
                (Value::DateTime(d), Some(n)) if n.fract() == 0.0 => d
                    .checked_add_signed(chrono::Duration::days((sign * n) as i64))
                    .map_or(Value::Null, Value::DateTime),
                _ => match (&a, &b) {
                    (Value::Date(x), Value::Date(y)) if op == Op::Sub => {
                        Value::Number((*x - *y).num_days() as f64)
                    }
                    (Value::Text(x), Value::Text(y)) if op == Op::Add => {
                        Value::Text(format!("{x}{y}"))
                    }
                    _ => match (as_number(&a), as_number(&b)) {
                        (Some(x), Some(y)) => Value::Number(x + sign * y),
                        _ => Value::Null,
                    },
                },
            }
        }
        Op::Mul => match (as_number(&a), as_number(&b)) {
            (Some(x), Some(y)) => Value::Number(x * y),
            _ => Value::Null,
        },
        Op::Div => match (as_number(&a), as_number(&b)) {
            (Some(x), Some(y)) if y != 0.0 => Value::Number(x / y),
            _ => Value::Null,
        },
        Op::And | Op::Or => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(src: &str) -> Value {
        let e = Expression::parse(src, Pos::new(1, 1), 0).expect("parses");
        e.eval(&|p: &[String]| match p.join(".").as_str() {
            "lead.days" => Value::Number(45.0),
            "lead.name" => Value::Text("Ana".into()),
            "today" => Value::Date(chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("date")),
            _ => Value::Null,
        })
    }

    #[test]
    fn arithmetic_comparison_and_logic() {
        assert_eq!(ev("lead.days >= 30 and lead.days < 60"), Value::Bool(true));
        assert_eq!(ev("not (lead.days > 90) or false"), Value::Bool(true));
        assert_eq!(ev("lead.days / 2 + 1 * 3"), Value::Number(25.5));
        assert_eq!(ev("lead.name == 'ana'"), Value::Bool(true));
        assert_eq!(ev("-lead.days"), Value::Number(-45.0));
        assert_eq!(
            ev("today + 7"),
            Value::Date(chrono::NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"))
        );
        assert_eq!(ev("lead.missing > 3"), Value::Null);
        assert!(!ev("lead.missing > 3").truthy());
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = Expression::parse("lead.days = 3", Pos::new(4, 11), 1).expect_err("bad");
        assert_eq!(e.pos, Pos::new(4, 22));
        assert!(e.message.contains("=="));
        let e = Expression::parse("(a > 1", Pos::new(1, 1), 0).expect_err("bad");
        assert!(e.message.contains("never closed"));
        let e = Expression::parse("a b", Pos::new(1, 1), 0).expect_err("bad");
        assert_eq!(e.pos, Pos::new(1, 3));
    }

    #[test]
    fn names_are_listed_with_positions() {
        let e = Expression::parse("slots.x > lead.y", Pos::new(2, 5), 0).expect("parses");
        let names = e.names();
        assert_eq!(names[0].0, vec!["slots".to_string(), "x".to_string()]);
        assert_eq!(names[1].1, Pos::new(2, 15));
    }
}
