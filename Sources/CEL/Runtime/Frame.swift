/// The state of one evaluation: variables, comprehension locals, context and budget.
struct Frame {
    let variables: [String: CELValue]
    var locals: [CELValue]
    let context: CELContext
    var iterationsLeft: Int
}
