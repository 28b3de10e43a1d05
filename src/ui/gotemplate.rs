//! The part of Go's text/template that podman's `--format` takes from desktop tools and
//! scripts, over JSON values: `{{.Field}}`, `{{.A.B}}`, `{{.}}`, `{{json .X}}`,
//! `{{index .Labels "manager"}}`, `{{join .Names ","}}`, `{{lower .X}}`, `{{upper .X}}`,
//! `{{len .X}}`, string literals, pipes (`{{.Labels | json}}`), the `{{-`/`-}}` trims, and
//! podman's own conventions: `\t` and `\n` written as two characters are a tab and a
//! newline, and a `table ` prefix adds a header line and aligns the columns.
//!
//! Values print as Go prints them: strings as they are, maps as `map[k:v k2:v2]` (keys
//! sorted), lists as `[a b]`, a missing map key as `<no value>`. Anything else of Go's
//! language (`range`, `if`, variables, other functions) is refused with the template's
//! text, never guessed at.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

/// A parsed `--format` template.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
    /// `table ...`: print a header line and align the columns.
    table: bool,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Action(Vec<Command>),
}

/// One command of a pipeline: a function and its arguments, or a lone operand.
#[derive(Debug, Clone)]
struct Command {
    words: Vec<Operand>,
}

#[derive(Debug, Clone)]
enum Operand {
    /// `.A.B` (empty for `.`).
    Field(Vec<String>),
    Text(String),
    Function(String),
}

const FUNCTIONS: &[&str] = &["json", "index", "join", "lower", "upper", "len"];

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{template}`: {why}")]
pub struct TemplateError {
    pub template: String,
    pub why: String,
}

impl Template {
    /// Parse `text` (podman's `--format` value, not `json`).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let fail = |why: String| TemplateError {
            template: text.to_owned(),
            why,
        };
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with([' ', '\t']) => {
                (true, rest.trim_start_matches([' ', '\t']))
            }
            _ => (false, text),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut pieces = Vec::new();
        let mut rest = body.as_str();
        while let Some(open) = rest.find("{{") {
            let mut literal = rest[..open].to_owned();
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| fail("an action `{{` is not closed with `}}`".into()))?;
            let mut action = &after[..close];
            if let Some(trimmed) = action.strip_prefix('-') {
                literal.truncate(literal.trim_end().len());
                action = trimmed;
            }
            let mut trim_after = false;
            if let Some(trimmed) = action.strip_suffix('-') {
                trim_after = true;
                action = trimmed;
            }
            if !literal.is_empty() {
                pieces.push(Piece::Text(literal));
            }
            pieces.push(Piece::Action(parse_pipeline(action.trim()).map_err(fail)?));
            rest = &after[close + 2..];
            if trim_after {
                rest = rest.trim_start();
            }
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template { pieces, table })
    }

    /// Whether the template asked for a header line and aligned columns.
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// The template applied to `value` (no newline added).
    pub fn render(&self, value: &Value) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Action(pipeline) => out.push_str(&show(&run(pipeline, value)?)),
            }
        }
        Ok(out)
    }

    /// The header line of a `table` template: each `{{.Field}}` as `headers` names it
    /// (else the field's name in capitals), the text between kept.
    pub fn header(&self, headers: &BTreeMap<&str, &str>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Action(pipeline) => {
                    let field = pipeline
                        .iter()
                        .flat_map(|c| &c.words)
                        .find_map(|w| match w {
                            Operand::Field(path) => path.last().cloned(),
                            _ => None,
                        });
                    let field = field.unwrap_or_default();
                    match headers.get(field.as_str()) {
                        Some(name) => out.push_str(name),
                        None => out.push_str(&field.to_uppercase()),
                    }
                }
            }
        }
        out
    }

    /// Every value through the template, one line each, as podman prints them: with a
    /// `table` template a header first and the columns aligned.
    pub fn lines(
        &self,
        values: &[Value],
        headers: &BTreeMap<&str, &str>,
        header: bool,
    ) -> Result<String, String> {
        let mut rows = Vec::with_capacity(values.len() + 1);
        if self.table && header {
            rows.push(self.header(headers));
        }
        for value in values {
            rows.push(self.render(value)?);
        }
        let mut out = String::new();
        if self.table {
            out = align(&rows);
        } else {
            for row in rows {
                out.push_str(&row);
                if !row.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        Ok(out)
    }
}

/// Rows whose cells are separated by tabs, as aligned columns (podman's tabwriter: at
/// least 12 wide, 2 spaces apart).
pub fn align(rows: &[String]) -> String {
    let cells: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.trim_end_matches('\n').split('\t').collect())
        .collect();
    let columns = cells.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                widths[i] = widths[i].max(cell.chars().count() + 2).max(12);
            }
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                let _ = write!(line, "{cell:<width$}", width = widths[i]);
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn parse_pipeline(text: &str) -> Result<Vec<Command>, String> {
    if text.is_empty() {
        return Err("an empty action `{{}}`".into());
    }
    let mut commands = Vec::new();
    for part in split_outside_quotes(text, '|')? {
        let words = split_outside_quotes(part.trim(), ' ')?
            .into_iter()
            .filter(|w| !w.is_empty())
            .map(|w| parse_operand(&w))
            .collect::<Result<Vec<_>, _>>()?;
        if words.is_empty() {
            return Err(format!("an empty command in `{{{{{text}}}}}`"));
        }
        commands.push(Command { words });
    }
    Ok(commands)
}

fn split_outside_quotes(text: &str, separator: char) -> Result<Vec<String>, String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        let part = parts.last_mut().expect("one part at least");
        if quoted {
            part.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
        } else if c == separator {
            parts.push(String::new());
        } else {
            if c == '"' {
                quoted = true;
            }
            part.push(c);
        }
    }
    if quoted {
        return Err(format!("a string in `{{{{{text}}}}}` is not closed"));
    }
    Ok(parts)
}

fn parse_operand(word: &str) -> Result<Operand, String> {
    if let Some(path) = word.strip_prefix('.') {
        if path.is_empty() {
            return Ok(Operand::Field(Vec::new()));
        }
        let names: Vec<String> = path.split('.').map(str::to_owned).collect();
        if names
            .iter()
            .any(|n| n.is_empty() || !n.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            return Err(format!("`{word}` is not a field"));
        }
        return Ok(Operand::Field(names));
    }
    if word.starts_with('"') {
        return serde_json::from_str::<String>(word)
            .map(Operand::Text)
            .map_err(|_| format!("`{word}` is not a string"));
    }
    if FUNCTIONS.contains(&word) {
        return Ok(Operand::Function(word.to_owned()));
    }
    Err(format!(
        "`{word}` is not something box's templates know (fields, strings, and the functions {})",
        FUNCTIONS.join(", ")
    ))
}

fn run(pipeline: &[Command], dot: &Value) -> Result<Value, String> {
    let mut previous: Option<Value> = None;
    for command in pipeline {
        let mut args: Vec<Value> = Vec::new();
        let (function, operands) = match command.words.first() {
            Some(Operand::Function(name)) => (Some(name.as_str()), &command.words[1..]),
            _ => (None, &command.words[..]),
        };
        for operand in operands {
            args.push(match operand {
                Operand::Field(path) => field(dot, path)?,
                Operand::Text(text) => Value::String(text.clone()),
                Operand::Function(name) => {
                    return Err(format!("`{name}` must come first in its command"));
                }
            });
        }
        if let Some(value) = previous.take() {
            args.push(value);
        }
        previous = Some(match function {
            None => match <[Value; 1]>::try_from(args) {
                Ok([value]) => value,
                Err(_) => return Err("a command without a function takes one value".into()),
            },
            Some(name) => call(name, args)?,
        });
    }
    previous.ok_or_else(|| "an empty pipeline".into())
}

fn field(dot: &Value, path: &[String]) -> Result<Value, String> {
    let mut current = dot;
    for name in path {
        match current {
            Value::Object(map) => match map.get(name) {
                Some(next) => current = next,
                None => return Err(format!("there is no field `{name}` here")),
            },
            _ => return Err(format!("`{name}` is not a field of a value that has none")),
        }
    }
    Ok(current.clone())
}

fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    let wrong = || format!("wrong arguments for `{name}`");
    match name {
        "json" => match args.as_slice() {
            [value] => Ok(Value::String(
                serde_json::to_string(value).map_err(|e| e.to_string())?,
            )),
            _ => Err(wrong()),
        },
        "lower" | "upper" => match args.as_slice() {
            [value] => {
                let text = show(value);
                Ok(Value::String(if name == "lower" {
                    text.to_lowercase()
                } else {
                    text.to_uppercase()
                }))
            }
            _ => Err(wrong()),
        },
        "len" => match args.as_slice() {
            [Value::Array(items)] => Ok(items.len().into()),
            [Value::Object(map)] => Ok(map.len().into()),
            [Value::String(text)] => Ok(text.len().into()),
            _ => Err(wrong()),
        },
        "join" => match args.as_slice() {
            [Value::Array(items), Value::String(separator)] => Ok(Value::String(
                items.iter().map(show).collect::<Vec<_>>().join(separator),
            )),
            _ => Err(wrong()),
        },
        "index" => {
            let (first, keys) = args.split_first().ok_or_else(wrong)?;
            let mut current = first.clone();
            for key in keys {
                current = match (&current, key) {
                    (Value::Object(map), Value::String(k)) => {
                        map.get(k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Array(items), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| items.get(i as usize).cloned())
                        .ok_or_else(|| format!("index {n} is out of range"))?,
                    _ => return Err(wrong()),
                };
            }
            Ok(current)
        }
        other => Err(format!("unknown function `{other}`")),
    }
}

/// A value as Go's templates print it.
pub fn show(value: &Value) -> String {
    match value {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(" "))
        }
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            format!(
                "map[{}]",
                sorted
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", show(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, value: &Value) -> String {
        Template::parse(template).unwrap().render(value).unwrap()
    }

    #[test]
    fn the_callers_templates_render_as_podman_s() {
        let ps = json!({"Names": "dev", "Status": "Up 5 minutes", "Labels": {"manager": "distrobox", "a": "b"},
                        "State": {"Status": "running"}, "List": ["x", "y"]});
        assert_eq!(render("{{.Names}}\\t{{.Status}}", &ps), "dev\tUp 5 minutes");
        assert_eq!(
            render("\"{{.Names}}:{{.Status}}\"", &ps),
            "\"dev:Up 5 minutes\""
        );
        assert_eq!(render("{{.Labels}}", &ps), "map[a:b manager:distrobox]");
        assert_eq!(render("{{index .Labels \"manager\"}}", &ps), "distrobox");
        assert_eq!(render("{{index .Labels \"none\"}}", &ps), "<no value>");
        assert_eq!(render("{{.State.Status}}", &ps), "running");
        assert_eq!(
            render("{{json .Labels}}", &ps),
            "{\"a\":\"b\",\"manager\":\"distrobox\"}"
        );
        assert_eq!(
            render("{{.Labels | json}}", &ps),
            "{\"a\":\"b\",\"manager\":\"distrobox\"}"
        );
        assert_eq!(render("{{join .List \",\"}}", &ps), "x,y");
        assert_eq!(render("{{.List}} {{len .List}}", &ps), "[x y] 2");
        assert_eq!(render("a {{- .Names -}} b", &ps), "adevb");
        assert_eq!(render("{{upper .Names}}", &ps), "DEV");
    }

    #[test]
    fn what_box_does_not_know_is_an_error_not_a_guess() {
        assert!(Template::parse("{{range .Names}}{{.}}{{end}}").is_err());
        assert!(Template::parse("{{.Names").is_err());
        assert!(Template::parse("{{printf \"%s\" .Names}}").is_err());
        let t = Template::parse("{{.Nope}}").unwrap();
        assert!(
            t.render(&json!({"Names": "x"}))
                .unwrap_err()
                .contains("Nope")
        );
    }

    #[test]
    fn tables_have_headers_and_aligned_columns() {
        let t = Template::parse("table {{.ID}}\\t{{.Names}}").unwrap();
        assert!(t.is_table());
        let headers = BTreeMap::from([("ID", "CONTAINER ID")]);
        let out = t
            .lines(&[json!({"ID": "abc", "Names": "dev"})], &headers, true)
            .unwrap();
        assert_eq!(out, "CONTAINER ID  NAMES\nabc           dev\n");
    }
}
