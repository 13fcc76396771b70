//! A small line diff in unified format, for dry runs that show what a file would become.
//!
//! Common leading and trailing lines are skipped first, and the changed middle is compared
//! with a longest-common-subsequence table, which is plenty for CHANGELOGs and manifests.

/// One line of an edit script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op<'a> {
    Keep(&'a str),
    Remove(&'a str),
    Add(&'a str),
}

/// Above this many table cells the middle is shown as all removed then all added.
const MAX_CELLS: usize = 4_000_000;

/// The unified diff (`---`/`+++` headers, `@@ -a,b +c,d @@` hunks with `context` lines
/// around each change) turning `old` into `new`; empty when they are the same.
pub(crate) fn unified_diff(
    old_name: &str,
    new_name: &str,
    old: &str,
    new: &str,
    context: usize,
) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = edit_script(&a, &b);
    if ops.iter().all(|op| matches!(op, Op::Keep(_))) {
        return String::new();
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    // Indices of changed ops, grouped into hunks when their context would touch.
    let changes: Vec<usize> = (0..ops.len())
        .filter(|&i| !matches!(ops[i], Op::Keep(_)))
        .collect();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for &i in &changes {
        match groups.last_mut() {
            Some((_, end)) if i <= *end + 2 * context + 1 => *end = i,
            _ => groups.push((i, i)),
        }
    }
    // Line numbers (0-based) in old and new at the start of each op.
    let mut old_at = Vec::with_capacity(ops.len() + 1);
    let mut new_at = Vec::with_capacity(ops.len() + 1);
    let (mut x, mut y) = (0, 0);
    for op in &ops {
        old_at.push(x);
        new_at.push(y);
        match op {
            Op::Keep(_) => {
                x += 1;
                y += 1;
            }
            Op::Remove(_) => x += 1,
            Op::Add(_) => y += 1,
        }
    }
    old_at.push(x);
    new_at.push(y);
    for (first, last) in groups {
        let start = first.saturating_sub(context);
        let end = (last + context + 1).min(ops.len());
        let old_len = old_at[end] - old_at[start];
        let new_len = new_at[end] - new_at[start];
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(old_at[start], old_len),
            range(new_at[start], new_len)
        ));
        for op in &ops[start..end] {
            let (mark, line) = match op {
                Op::Keep(l) => (' ', l),
                Op::Remove(l) => ('-', l),
                Op::Add(l) => ('+', l),
            };
            out.push(mark);
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `start,len` as unified diffs write it (1-based; `,1` omitted; an empty range names the
/// line before it).
fn range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{len}", start + 1),
    }
}

fn edit_script<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<Op> = a[..prefix].iter().map(|l| Op::Keep(l)).collect();
    if am.len().saturating_mul(bm.len()) > MAX_CELLS {
        ops.extend(am.iter().map(|l| Op::Remove(l)));
        ops.extend(bm.iter().map(|l| Op::Add(l)));
    } else {
        ops.extend(lcs_ops(am, bm));
    }
    ops.extend(a[a.len() - suffix..].iter().map(|l| Op::Keep(l)));
    ops
}

fn lcs_ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    let (n, m) = (a.len(), b.len());
    // table[i][j]: length of the LCS of a[i..] and b[j..].
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[at(i, j)] = if a[i] == b[j] {
                table[at(i + 1, j + 1)] + 1
            } else {
                table[at(i + 1, j)].max(table[at(i, j + 1)])
            };
        }
    }
    let mut ops = Vec::with_capacity(n + m);
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            ops.push(Op::Keep(a[i]));
            i += 1;
            j += 1;
        } else if table[at(i + 1, j)] >= table[at(i, j + 1)] {
            ops.push(Op::Remove(a[i]));
            i += 1;
        } else {
            ops.push(Op::Add(b[j]));
            j += 1;
        }
    }
    ops.extend(a[i..].iter().map(|l| Op::Remove(l)));
    ops.extend(b[j..].iter().map(|l| Op::Add(l)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_has_no_diff() {
        assert_eq!(unified_diff("a", "b", "x\ny\n", "x\ny\n", 3), "");
    }

    #[test]
    fn one_hunk_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n";
        assert_eq!(
            unified_diff("old", "new", old, new, 2),
            "--- old\n+++ new\n@@ -3,5 +3,5 @@\n 3\n 4\n-5\n+five\n 6\n 7\n"
        );
    }

    #[test]
    fn separate_hunks_and_insertions() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let mut new = String::new();
        for i in (1..=20).filter(|&i| i != 18) {
            new.push_str(&format!("{i}\n"));
            if i == 2 {
                new.push_str("new\n");
            }
        }
        assert_eq!(
            unified_diff("a", "b", &old, &new, 1),
            "--- a\n+++ b\n@@ -2,2 +2,3 @@\n 2\n+new\n 3\n@@ -17,3 +18,2 @@\n 17\n-18\n 19\n"
        );
    }

    #[test]
    fn into_an_empty_file() {
        assert_eq!(
            unified_diff("a", "b", "", "x\n", 3),
            "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n"
        );
        assert_eq!(
            unified_diff("a", "b", "x\n", "", 3),
            "--- a\n+++ b\n@@ -1 +0,0 @@\n-x\n"
        );
    }
}
