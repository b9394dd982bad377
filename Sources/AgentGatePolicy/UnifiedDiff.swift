/// A unified diff of two texts, line by line (`diff -u` format, three lines of context), for
/// reviewing a suggested policy against the one it grows from.
public enum UnifiedDiff {
    /// The diff, or "" when the texts are equal. Lines are compared whole; the texts are policy
    /// files (hundreds of lines), so the quadratic longest-common-subsequence table is fine.
    public static func diff(_ old: String, _ new: String, oldLabel: String, newLabel: String, context: Int = 3) -> String {
        let a = lines(old), b = lines(new)
        guard a != b else { return "" }
        // lcs[i][j]: the longest common subsequence of a[i...] and b[j...].
        var lcs = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        enum Edit { case same(Int, Int), removed(Int), added(Int) }
        var edits: [Edit] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] { edits.append(.same(i, j)); i += 1; j += 1 }
            else if j < b.count, i == a.count || lcs[i][j + 1] >= lcs[i + 1][j] { edits.append(.added(j)); j += 1 }
            else { edits.append(.removed(i)); i += 1 }
        }
        // Lines of each text before each edit: where a hunk starting there begins.
        var before: [(old: Int, new: Int)] = []
        var consumed = (old: 0, new: 0)
        for edit in edits {
            before.append(consumed)
            switch edit {
            case .same: consumed.old += 1; consumed.new += 1
            case .removed: consumed.old += 1
            case .added: consumed.new += 1
            }
        }
        var output = "--- \(oldLabel)\n+++ \(newLabel)\n"
        let changed = edits.indices.filter { if case .same = edits[$0] { return false } else { return true } }
        var index = 0
        while index < changed.count {
            // A hunk: changes no more than 2 * context lines apart, with context around them.
            var last = index
            while last + 1 < changed.count, changed[last + 1] - changed[last] <= 2 * context { last += 1 }
            let start = max(0, changed[index] - context), end = min(edits.count - 1, changed[last] + context)
            var oldCount = 0, newCount = 0
            var body = ""
            for position in start...end {
                switch edits[position] {
                case .same(let x, _): oldCount += 1; newCount += 1; body += " " + a[x] + "\n"
                case .removed(let x): oldCount += 1; body += "-" + a[x] + "\n"
                case .added(let y): newCount += 1; body += "+" + b[y] + "\n"
                }
            }
            output += "@@ -\(range(before[start].old, oldCount)) +\(range(before[start].new, newCount)) @@\n" + body
            index = last + 1
        }
        return output
    }

    /// `start,count` 1-based, as diff writes it (an empty range names the line before it).
    private static func range(_ start: Int, _ count: Int) -> String {
        count == 0 ? "\(start),0" : "\(start + 1),\(count)"
    }

    private static func lines(_ text: String) -> [String] {
        var result = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if result.last == "" { result.removeLast() }
        return result
    }
}
