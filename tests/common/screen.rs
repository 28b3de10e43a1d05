//! What a terminal shows after a program wrote `output` to it: a small replay of the
//! control sequences box's progress bars use (indicatif through console: cursor up and
//! down, carriage return, erase in line, erase below), so tests can check the final
//! screen rather than the byte stream, which redraws make unreadable.
//!
//! Lines wrap at the given width; the screen scrolls without limit (nothing is lost off
//! the top). Sequences it does not know (colours, cursor visibility) change nothing.

/// The lines on screen after `output`, trailing blank lines removed.
pub fn render(output: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = output.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
            }
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut params = String::new();
                let mut command = ' ';
                for c in chars.by_ref() {
                    if c.is_ascii_digit() || c == ';' || c == '?' {
                        params.push(c);
                    } else {
                        command = c;
                        break;
                    }
                }
                let n: usize = params.parse().unwrap_or(0);
                match command {
                    'A' => row = row.saturating_sub(n.max(1)),
                    'B' => row += n.max(1),
                    'C' => col += n.max(1),
                    'D' => col = col.saturating_sub(n.max(1)),
                    'K' => {
                        let line = line_at(&mut lines, row);
                        match n {
                            0 => line.truncate(col),
                            1 => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                            _ => line.clear(),
                        }
                    }
                    'J' if n == 0 => {
                        line_at(&mut lines, row).truncate(col);
                        lines.truncate(row + 1);
                    }
                    'J' => lines.iter_mut().for_each(Vec::clear),
                    'H' => {
                        let mut at = params.split(';').map(|p| p.parse::<usize>().unwrap_or(1));
                        row = at.next().unwrap_or(1).saturating_sub(1);
                        col = at.next().unwrap_or(1).saturating_sub(1);
                    }
                    _ => {}
                }
            }
            c if c.is_control() => {}
            c => {
                if col >= width {
                    row += 1;
                    col = 0;
                }
                let line = line_at(&mut lines, row);
                if line.len() < col {
                    line.resize(col, ' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    let mut out: Vec<String> = lines
        .into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_owned())
        .collect();
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

fn line_at(lines: &mut Vec<Vec<char>>, row: usize) -> &mut Vec<char> {
    if lines.len() <= row {
        lines.resize(row + 1, Vec::new());
    }
    &mut lines[row]
}
