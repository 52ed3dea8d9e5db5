//! The `calculator` builtin: a small recursive-descent parser for arithmetic.
//!
//! Models are bad at arithmetic and good at writing expressions, so they get a calculator
//! — but never `eval` or a shell: this grammar can only compute numbers.
//!
//! ```text
//! expr    := term (('+' | '-') term)*
//! term    := unary (('*' | '/' | '%') unary)*
//! unary   := ('-' | '+') unary | power
//! power   := primary (('^' | '**') unary)?        right-associative; -2^2 = -4
//! primary := number | constant | function '(' expr (',' expr)* ')' | '(' expr ')'
//! ```

/// Why an expression could not be evaluated; the message is shown to the model.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum CalcError {
    /// Occurs when a function gets the wrong number of arguments.
    #[error("`{function}` takes {expected} argument(s), got {got}")]
    Arity {
        expected: &'static str,
        function: String,
        got: usize,
    },
    /// Occurs when a division or remainder has a zero divisor.
    #[error("division by zero")]
    DivisionByZero,
    /// Occurs when a function is applied outside its domain (`sqrt(-1)`, `ln(0)`).
    #[error("{function} is undefined for {value}")]
    Domain {
        function: &'static str,
        value: String,
    },
    /// Occurs when the expression is empty.
    #[error("the expression is empty")]
    Empty,
    /// Occurs when parentheses nest deeper than [`MAX_DEPTH`].
    #[error("the expression nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Occurs when the result overflows to infinity or is not a number.
    #[error("the result is not a finite number")]
    NotFinite,
    /// Occurs when a character or token does not fit the grammar at that place.
    #[error("unexpected {found} at position {position}{hint}")]
    Unexpected {
        found: String,
        hint: &'static str,
        position: usize,
    },
    /// Occurs when a name is neither a constant nor a function.
    #[error("unknown name `{name}`; known: pi, e, {FUNCTIONS}")]
    UnknownName { name: String },
}

/// How deep parentheses, unary signs and powers may nest; bounds the parser's recursion.
pub const MAX_DEPTH: usize = 64;

const FUNCTIONS: &str = "sqrt, abs, round, floor, ceil, min, max, ln, log10, exp";

const THOUSANDS_HINT: &str = "; write numbers without thousands separators (1000, not 1,000)";

/// Evaluates `expression` and formats the result for a model to read.
pub fn calculate(expression: &str) -> Result<String, CalcError> {
    Ok(format_number(evaluate(expression)?))
}

/// Evaluates `expression` to a finite number.
pub fn evaluate(expression: &str) -> Result<f64, CalcError> {
    let tokens = lex(expression)?;
    if tokens.is_empty() {
        return Err(CalcError::Empty);
    }
    let mut parser = Parser {
        depth: 0,
        pos: 0,
        tokens,
        end: expression.chars().count(),
    };
    let value = parser.expr()?;
    if let Some(token) = parser.tokens.get(parser.pos) {
        let hint = if token.kind == Kind::Comma {
            THOUSANDS_HINT
        } else {
            ""
        };
        return Err(parser.unexpected_at(parser.pos, hint));
    }
    finite(value)
}

/// Formats without float noise: 12 significant digits, no trailing `.0`, exponent notation
/// only for very large or very small magnitudes.
pub fn format_number(value: f64) -> String {
    let rounded: f64 = format!("{value:.11e}").parse().unwrap_or(value);
    let rounded = if rounded == 0.0 { 0.0 } else { rounded }; // no "-0"
    let magnitude = rounded.abs();
    if magnitude != 0.0 && !(1e-6..1e16).contains(&magnitude) {
        format!("{rounded:e}")
    } else {
        format!("{rounded}")
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Caret,
    Comma,
    LParen,
    Minus,
    Name(String),
    Number(f64),
    Percent,
    Plus,
    RParen,
    Slash,
    Star,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    /// Character offset (1-based for messages).
    position: usize,
    text: String,
}

fn lex(input: &str) -> Result<Vec<Token>, CalcError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '0'..='9' | '.' => {
                i = scan_number(&chars, i);
                let text: String = chars[start..i].iter().collect();
                let value = text.parse::<f64>().map_err(|_| CalcError::Unexpected {
                    found: format!("number `{text}`"),
                    hint: "",
                    position: start + 1,
                })?;
                tokens.push(Token {
                    kind: Kind::Number(value),
                    position: start + 1,
                    text,
                });
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                tokens.push(Token {
                    kind: Kind::Name(text.clone()),
                    position: start + 1,
                    text,
                });
                continue;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                Kind::Caret
            }
            '^' => Kind::Caret,
            ',' => Kind::Comma,
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            '-' | '−' => Kind::Minus,
            '%' => Kind::Percent,
            '+' => Kind::Plus,
            '/' => Kind::Slash,
            '*' | '×' => Kind::Star,
            other => {
                return Err(CalcError::Unexpected {
                    found: format!("`{other}`"),
                    hint: "",
                    position: start + 1,
                });
            }
        };
        i += 1;
        tokens.push(Token {
            kind,
            position: start + 1,
            text: chars[start..i].iter().collect(),
        });
    }
    Ok(tokens)
}

/// Digits, an optional fraction, an optional exponent (`1`, `2.5`, `.5`, `6.02e23`, `1E-3`).
fn scan_number(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
        i += 1;
    }
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
            j += 1;
        }
        if j < chars.len() && chars[j].is_ascii_digit() {
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    i
}

struct Parser {
    depth: usize,
    end: usize,
    pos: usize,
    tokens: Vec<Token>,
}

impl Parser {
    fn peek(&self) -> Option<&Kind> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn eat(&mut self, kind: &Kind) -> bool {
        if self.peek() == Some(kind) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn unexpected_at(&self, pos: usize, hint: &'static str) -> CalcError {
        match self.tokens.get(pos) {
            Some(token) => CalcError::Unexpected {
                found: format!("`{}`", token.text),
                hint,
                position: token.position,
            },
            None => CalcError::Unexpected {
                found: "end of expression".to_string(),
                hint,
                position: self.end + 1,
            },
        }
    }

    fn enter(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(CalcError::TooDeep)
        } else {
            Ok(())
        }
    }

    fn expr(&mut self) -> Result<f64, CalcError> {
        self.enter()?;
        let mut value = self.term()?;
        loop {
            if self.eat(&Kind::Plus) {
                value += self.term()?;
            } else if self.eat(&Kind::Minus) {
                value -= self.term()?;
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(value)
    }

    fn term(&mut self) -> Result<f64, CalcError> {
        let mut value = self.unary()?;
        loop {
            if self.eat(&Kind::Star) {
                value *= self.unary()?;
            } else if self.eat(&Kind::Slash) {
                let divisor = self.unary()?;
                if divisor == 0.0 {
                    return Err(CalcError::DivisionByZero);
                }
                value /= divisor;
            } else if self.eat(&Kind::Percent) {
                let divisor = self.unary()?;
                if divisor == 0.0 {
                    return Err(CalcError::DivisionByZero);
                }
                value %= divisor;
            } else {
                break;
            }
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<f64, CalcError> {
        self.enter()?;
        let value = if self.eat(&Kind::Minus) {
            -self.unary()?
        } else if self.eat(&Kind::Plus) {
            self.unary()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Ok(value)
    }

    fn power(&mut self) -> Result<f64, CalcError> {
        let base = self.primary()?;
        if self.eat(&Kind::Caret) {
            // The exponent is a `unary`, which recurses into `power`: right-associative.
            let exponent = self.unary()?;
            return finite(base.powf(exponent));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<f64, CalcError> {
        let Some(token) = self.tokens.get(self.pos).cloned() else {
            return Err(self.unexpected_at(self.pos, ""));
        };
        self.pos += 1;
        match token.kind {
            Kind::Number(value) => Ok(value),
            Kind::LParen => {
                let value = self.expr()?;
                if !self.eat(&Kind::RParen) {
                    return Err(self.unexpected_at(self.pos, "; expected `)`"));
                }
                Ok(value)
            }
            Kind::Name(name) => self.name(name),
            Kind::Comma => Err(self.unexpected_at(self.pos - 1, THOUSANDS_HINT)),
            _ => Err(self.unexpected_at(self.pos - 1, "")),
        }
    }

    fn name(&mut self, name: String) -> Result<f64, CalcError> {
        match name.as_str() {
            "pi" => return Ok(std::f64::consts::PI),
            "e" => return Ok(std::f64::consts::E),
            _ => {}
        }
        if !FUNCTIONS.split(", ").any(|f| f == name) {
            return Err(CalcError::UnknownName { name });
        }
        if !self.eat(&Kind::LParen) {
            return Err(self.unexpected_at(self.pos, "; a function needs `(`"));
        }
        let mut args = vec![self.expr()?];
        while self.eat(&Kind::Comma) {
            args.push(self.expr()?);
        }
        if !self.eat(&Kind::RParen) {
            return Err(self.unexpected_at(self.pos, "; expected `,` or `)`"));
        }
        apply(&name, &args)
    }
}

fn apply(name: &str, args: &[f64]) -> Result<f64, CalcError> {
    let arity = |expected: &'static str| CalcError::Arity {
        expected,
        function: name.to_string(),
        got: args.len(),
    };
    let domain = |function: &'static str, value: f64| CalcError::Domain {
        function,
        value: format_number(value),
    };
    let value = match (name, args) {
        ("min", [first, rest @ ..]) => rest.iter().fold(*first, |a, b| a.min(*b)),
        ("max", [first, rest @ ..]) => rest.iter().fold(*first, |a, b| a.max(*b)),
        ("min" | "max", _) => return Err(arity("1 or more")),
        ("round", [x]) => x.round(),
        ("round", [x, digits]) => {
            if digits.fract() != 0.0 || !(0.0..=15.0).contains(digits) {
                return Err(domain("round's digit count", *digits));
            }
            let scale = 10f64.powi(*digits as i32);
            (x * scale).round() / scale
        }
        ("round", _) => return Err(arity("1 or 2")),
        (_, [x]) => match name {
            "sqrt" if *x < 0.0 => return Err(domain("sqrt", *x)),
            "sqrt" => x.sqrt(),
            "abs" => x.abs(),
            "floor" => x.floor(),
            "ceil" => x.ceil(),
            "ln" if *x <= 0.0 => return Err(domain("ln", *x)),
            "log10" if *x <= 0.0 => return Err(domain("log10", *x)),
            "ln" => x.ln(),
            "log10" => x.log10(),
            "exp" => x.exp(),
            _ => {
                return Err(CalcError::UnknownName {
                    name: name.to_string(),
                });
            }
        },
        _ => return Err(arity("1")),
    };
    finite(value)
}

fn finite(value: f64) -> Result<f64, CalcError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(CalcError::NotFinite)
    }
}

#[cfg(test)]
#[path = "calculator_tests.rs"]
mod tests;
