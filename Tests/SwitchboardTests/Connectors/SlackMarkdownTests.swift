import Testing
@testable import Switchboard

/// The sandbox's Slack stand-in shows messages as Slack renders mrkdwn.
@Suite("Slack mrkdwn in the sandbox")
struct SlackMarkdownTests {
    @Test("bold fields, links with labels, mentions, and everything else escaped")
    func rendering() {
        #expect(SlackMarkdown.html("*Name*\nTim") == "<strong>Name</strong><br>Tim")
        #expect(SlackMarkdown.html("<https://gw.example.com/console/runs/run_1|Open the run>")
            == #"<a href="https://gw.example.com/console/runs/run_1">Open the run</a>"#)
        #expect(SlackMarkdown.html("_maybe_ ~not~ `code` <!here> <@U123>") == "<em>maybe</em> <del>not</del> <code>code</code> @here @U123")
        #expect(SlackMarkdown.html("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;")
        #expect(SlackMarkdown.html("<javascript:alert(1)|click>") == "&lt;javascript:alert(1)|click&gt;", "only http links")
        #expect(SlackMarkdown.html("2 * 3 * 4") == "2 * 3 * 4", "a lone star stays")
        #expect(SlackMarkdown.html("a & b") == "a &amp; b")
        #expect(SlackMarkdown.html("<#C1|reviews>") == "#reviews")
    }
}
