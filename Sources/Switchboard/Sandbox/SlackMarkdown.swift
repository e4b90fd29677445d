import Foundation

/// Slack's `mrkdwn` as HTML, for the sandbox's Slack stand-in: `*bold*`, `_italic_`, `~strike~`,
/// `` `code` ``, line breaks, and `<https://…|label>` links (`<@U…>` and `<!here>` as text).
/// Everything else is escaped; a link is only made of an http or https address.
public enum SlackMarkdown {
    public static func html(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "<") {
            out += inline(rest[..<open])
            guard let close = rest[open...].firstIndex(of: ">") else {
                out += inline(rest[open...])
                return out
            }
            out += token(rest[rest.index(after: open) ..< close])
            rest = rest[rest.index(after: close)...]
        }
        return out + inline(rest)
    }

    /// `<…>`: a link, a mention or a special word.
    private static func token(_ body: Substring) -> String {
        let parts = body.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
        let target = String(parts[0])
        let label = parts.count > 1 ? String(parts[1]) : target
        if target.hasPrefix("https://") || target.hasPrefix("http://") {
            return "<a href=\"\(escape(target))\">\(escape(label))</a>"
        }
        if target.hasPrefix("@") { return escape(parts.count > 1 ? "@" + label : target) }
        if target.hasPrefix("#") { return escape("#" + (parts.count > 1 ? label : String(target.dropFirst()))) }
        if target.hasPrefix("!") { return escape("@" + target.dropFirst()) }
        return escape("<" + body + ">")
    }

    /// Text between tokens: escaped, then the emphasis marks.
    private static func inline(_ text: Substring) -> String {
        var html = escape(String(text))
        for (mark, tag) in [("*", "strong"), ("_", "em"), ("~", "del"), ("`", "code")] {
            html = wrap(html, mark: Character(mark), tag: tag)
        }
        return html.replacingOccurrences(of: "\n", with: "<br>")
    }

    /// Pairs of `mark` on one line around text that neither starts nor ends with a space.
    private static func wrap(_ text: String, mark: Character, tag: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let start = rest.firstIndex(of: mark) {
            let after = rest.index(after: start)
            guard let end = rest[after...].firstIndex(where: { $0 == mark || $0 == "\n" }), rest[end] == mark, end > after,
                  rest[after] != " ", rest[rest.index(before: end)] != " "
            else {
                out += rest[...start]
                rest = rest[after...]
                continue
            }
            out += rest[..<start] + "<\(tag)>" + rest[after ..< end] + "</\(tag)>"
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
