import CEL
import CELFuzzing
import Testing

@Suite("CEL robustness")
struct FuzzTests {
    @Test("2,000 seeded random and malformed expressions neither crash nor hang")
    func seededFuzz() {
        var rng = SeededGenerator(state: 20_261_126)
        var compiled = 0
        for i in 0 ..< 2_000 {
            let source = i % 2 == 0
                ? ExpressionFuzzer.expression(depth: 5, using: &rng)
                : ExpressionFuzzer.malformed(using: &rng)
            if ExpressionFuzzer.run(source) { compiled += 1 }
        }
        // Well-formed halves mostly compile; the malformed mostly do not. Both paths were exercised.
        #expect(compiled > 500)
        #expect(compiled < 2_000)
    }
}
