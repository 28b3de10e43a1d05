//! The `Exec=` key of desktop entries: parsing and writing per the Desktop Entry
//! Specification ("The Exec key" and "Possible value types").
//!
//! Two layers of escaping apply, in this order when reading: the general string escapes
//! (`\s \n \t \r \\`), then the Exec quoting rules (arguments separated by spaces, an
//! argument in double quotes may hold reserved characters, and inside quotes `"`, `` ` ``,
//! `$` and `\` are escaped with a backslash). Field codes (`%f %F %u %U %i %c %k` and the
//! deprecated ones) are kept as codes so the launcher still expands them; `%%` is a
//! literal percent sign. Invariant: `to_value(parse_value(v))` runs the same argv as `v`.
//!
//! Reading is lenient where launchers are: GLib (`g_shell_parse_argv`, after field code
//! expansion) and KDE (`KShell::splitArgs`) also take shell-style single quotes (text up
//! to the next `'`, taken literally) and a backslash outside quotes (the next character
//! literally), and real entries use both (`Exec=sh -c 'cmd > file'`). Parsing them the
//! way those launchers do keeps the command the box's own menu would run; writing always
//! follows the spec (double quotes only), so the result validates. Field codes inside
//! single quotes stay codes, as GLib expands them before it splits the line.

use anyhow::{Result, bail};

/// One piece of an argument: literal text or a field code the launcher expands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// The letter of a field code (`u` for `%u`).
    Code(char),
}

/// One argument of an Exec command line.
pub type Arg = Vec<Piece>;

/// The field code letters the specification defines (current and deprecated).
const CODES: &str = "fFuUdDnNickvm";

/// Undo the general string escapes of a desktop entry value.
pub fn unescape_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            // Not a general escape: leave it for the Exec layer (`\"` inside quotes).
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Apply the general string escapes to a value.
pub fn escape_string(value: &str) -> String {
    escape(value, true)
}

/// Apply the general string escapes to text appended to a value (a leading space is
/// fine there).
pub fn escape_appended(value: &str) -> String {
    escape(value, false)
}

fn escape(value: &str, whole: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Leading spaces would be trimmed by parsers.
            ' ' if i == 0 && whole => out.push_str("\\s"),
            c => out.push(c),
        }
    }
    out
}

/// Parse an Exec value as it appears in the file (general escapes included).
pub fn parse_value(raw: &str) -> Result<Vec<Arg>> {
    parse(&unescape_string(raw))
}

/// Parse an Exec command line whose general escapes were already undone.
pub fn parse(line: &str) -> Result<Vec<Arg>> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Double,
        Single,
    }
    let mut args: Vec<Arg> = Vec::new();
    let mut current: Option<Arg> = None;
    let mut chars = line.chars().peekable();
    let push_char = |arg: &mut Arg, c: char| match arg.last_mut() {
        Some(Piece::Text(text)) => text.push(c),
        _ => arg.push(Piece::Text(c.to_string())),
    };
    let mut quote = Quote::None;
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' if quote == Quote::None => {
                if let Some(arg) = current.take() {
                    args.push(arg);
                }
            }
            // A quote opens or closes quoting; `""` and `''` are empty arguments.
            '"' if quote != Quote::Single => {
                quote = if quote == Quote::Double {
                    Quote::None
                } else {
                    Quote::Double
                };
                current.get_or_insert_with(Vec::new);
            }
            '\'' if quote != Quote::Double => {
                quote = if quote == Quote::Single {
                    Quote::None
                } else {
                    Quote::Single
                };
                current.get_or_insert_with(Vec::new);
            }
            '\\' if quote == Quote::Double => match chars.next() {
                Some(e @ ('"' | '`' | '$' | '\\')) => {
                    push_char(current.get_or_insert_with(Vec::new), e)
                }
                // Not a valid escape: be lenient and keep both characters.
                Some(other) => {
                    let arg = current.get_or_insert_with(Vec::new);
                    push_char(arg, '\\');
                    push_char(arg, other);
                }
                None => bail!("the Exec line `{line}` ends inside a quoted argument"),
            },
            // Outside quotes (GLib and KDE): the next character literally; a backslash
            // before a newline joins the lines; a trailing one stays.
            '\\' if quote == Quote::None => match chars.next() {
                Some('\n') => {}
                Some(other) => push_char(current.get_or_insert_with(Vec::new), other),
                None => push_char(current.get_or_insert_with(Vec::new), '\\'),
            },
            '%' => match chars.next() {
                Some('%') => push_char(current.get_or_insert_with(Vec::new), '%'),
                Some(code) if CODES.contains(code) => {
                    current.get_or_insert_with(Vec::new).push(Piece::Code(code))
                }
                Some(other) => bail!("the Exec line `{line}` has an unknown field code %{other}"),
                None => bail!("the Exec line `{line}` ends with a lone %"),
            },
            c => push_char(current.get_or_insert_with(Vec::new), c),
        }
    }
    if quote != Quote::None {
        bail!("the Exec line `{line}` has an unterminated quoted argument");
    }
    if let Some(arg) = current.take() {
        args.push(arg);
    }
    Ok(args)
}

/// Characters that force an argument into double quotes (the specification's reserved
/// characters, plus `%` is handled separately as `%%`).
fn needs_quotes(text: &str) -> bool {
    text.is_empty()
        || text.chars().any(|c| {
            matches!(
                c,
                ' ' | '\t'
                    | '\n'
                    | '"'
                    | '\''
                    | '\\'
                    | '>'
                    | '<'
                    | '~'
                    | '|'
                    | '&'
                    | ';'
                    | '$'
                    | '*'
                    | '?'
                    | '#'
                    | '('
                    | ')'
                    | '`'
            )
        })
}

/// Write one argument with the Exec quoting rules (before general escaping).
fn quote_arg(arg: &Arg) -> String {
    if let [Piece::Code(code)] = arg.as_slice() {
        return format!("%{code}");
    }
    let text: String = arg
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.clone(),
            Piece::Code(_) => String::new(),
        })
        .collect();
    let quoted = needs_quotes(&text) || arg.is_empty();
    let mut out = String::new();
    if quoted {
        out.push('"');
    }
    for piece in arg {
        match piece {
            Piece::Code(code) => {
                out.push('%');
                out.push(*code);
            }
            Piece::Text(text) => {
                for c in text.chars() {
                    match c {
                        '%' => out.push_str("%%"),
                        '"' | '`' | '$' | '\\' if quoted => {
                            out.push('\\');
                            out.push(c);
                        }
                        c => out.push(c),
                    }
                }
            }
        }
    }
    if quoted {
        out.push('"');
    }
    out
}

/// Write an argv as an Exec command line (before general escaping).
pub fn to_line(args: &[Arg]) -> String {
    args.iter().map(quote_arg).collect::<Vec<_>>().join(" ")
}

/// Write an argv as the value of an Exec key, general escapes included.
pub fn to_value(args: &[Arg]) -> String {
    escape_string(&to_line(args))
}

/// A literal argument.
pub fn text(s: &str) -> Arg {
    vec![Piece::Text(s.to_owned())]
}

/// The literal text of an argument, if it has no field code.
pub fn literal(arg: &Arg) -> Option<String> {
    let mut out = String::new();
    for piece in arg {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Code(_) => return None,
        }
    }
    Some(out)
}

/// The program an Exec line runs, looking through an `env [-opts] VAR=value...` prefix.
pub fn program(args: &[Arg]) -> Option<String> {
    let mut words = args.iter().map(literal);
    let first = words.next()??;
    let base = first.rsplit('/').next().unwrap_or(&first);
    if base != "env" {
        return Some(first);
    }
    while let Some(word) = words.next() {
        let word = word?;
        // Options of env(1) that take a separate argument.
        if matches!(word.as_str(), "-u" | "--unset" | "-C" | "--chdir") {
            words.next();
            continue;
        }
        if word.starts_with('-') || word.contains('=') {
            continue;
        }
        return Some(word);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(args: &[Arg]) -> Vec<String> {
        args.iter()
            .map(|a| {
                a.iter()
                    .map(|p| match p {
                        Piece::Text(t) => t.clone(),
                        Piece::Code(c) => format!("<{c}>"),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn parses_field_codes_quotes_escapes_env_and_percent() {
        // As written in a file: general escapes first (\\\\ is one backslash in quotes).
        let raw = r#"env GTK_THEME=Adwaita:dark "/opt/My App/bin/app" --title "say \"hi\" \\$HOME \\\\x" --rate 100%% %U"#;
        let args = parse_value(raw).unwrap();
        assert_eq!(
            lits(&args),
            [
                "env",
                "GTK_THEME=Adwaita:dark",
                "/opt/My App/bin/app",
                "--title",
                r#"say "hi" $HOME \x"#,
                "--rate",
                "100%",
                "<U>"
            ]
        );
        assert_eq!(program(&args).as_deref(), Some("/opt/My App/bin/app"));
        assert_eq!(
            lits(&parse("app --file=%f %u %F %i %c %k").unwrap()),
            ["app", "--file=<f>", "<u>", "<F>", "<i>", "<c>", "<k>"]
        );
        assert_eq!(lits(&parse(r#"a "" b"#).unwrap()), ["a", "", "b"]);
    }

    #[test]
    fn round_trips_to_the_same_argv() {
        for raw in [
            "xterm",
            r#"env A=1 "/opt/My App/app" %U"#,
            r#"sh -c "echo \\$0 \\"\\\\\\" %%" %f"#,
            "app --level=50%% %u",
            r#"prog "it's" "a;b" "~x""#,
        ] {
            let args = parse_value(raw).unwrap();
            let again = parse_value(&to_value(&args)).unwrap();
            assert_eq!(args, again, "{raw} -> {}", to_value(&args));
        }
        // Reserved characters get quoted; plain words do not.
        let args = vec![
            text("/home/J Doe/box"),
            text("run"),
            text("a$b"),
            vec![Piece::Code('u')],
        ];
        assert_eq!(to_value(&args), r#""/home/J Doe/box" run "a\\$b" %u"#);
    }

    #[test]
    fn single_quotes_and_backslashes_parse_as_glib_does() {
        // The audit's case: one argument, not four.
        assert_eq!(
            lits(&parse("sh -c 'echo one two > /tmp/x'").unwrap()),
            ["sh", "-c", "echo one two > /tmp/x"]
        );
        // Literal up to the next quote: backslashes, `$` and double quotes included;
        // adjacent quoted parts join into one word; '' is an empty argument.
        assert_eq!(
            lits(&parse(r#"a 'x\y $HOME "q"' pre'mid'post '' it"'"s"#).unwrap()),
            ["a", r#"x\y $HOME "q""#, "premidpost", "", "it's"]
        );
        // Field codes are still codes inside single quotes (GLib expands them first).
        assert_eq!(
            lits(&parse("app '--file=%f' '100%%'").unwrap()),
            ["app", "--file=<f>", "100%"]
        );
        // A backslash outside quotes takes the next character literally.
        assert_eq!(lits(&parse(r"my\ app a\'b").unwrap()), ["my app", "a'b"]);
        assert!(parse("sh -c 'unterminated").is_err());
        // Written back with the spec's double quotes, the argv is the same.
        for line in [
            "sh -c 'echo one two > /tmp/x'",
            r#"a 'x\y $HOME "q"' '' it"'"s"#,
        ] {
            let args = parse(line).unwrap();
            assert_eq!(parse_value(&to_value(&args)).unwrap(), args, "{line}");
        }
        assert_eq!(
            to_line(&parse("sh -c 'echo one two > /tmp/x'").unwrap()),
            r#"sh -c "echo one two > /tmp/x""#
        );
    }

    #[test]
    fn rejects_broken_lines() {
        assert!(parse(r#"app "unterminated"#).is_err());
        assert!(parse("app %z").is_err());
        assert!(parse("app %").is_err());
    }

    #[test]
    fn program_sees_through_env() {
        let p = |s: &str| program(&parse(s).unwrap());
        assert_eq!(p("env -u X A=1 B=2 gimp %U").as_deref(), Some("gimp"));
        assert_eq!(p("/usr/bin/env A=1").as_deref(), None);
        assert_eq!(p("code --new-window").as_deref(), Some("code"));
    }
}
