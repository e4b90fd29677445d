import Foundation

/// Where a running gateway reads its configuration again (a reload): the directory, the
/// `${NAME}` values and what connectors are built with.
public struct ConfigurationLoader: Sendable {
    public var directory: String
    public var environment: EnvironmentInterpolator
    public var context: ConnectorBuildContext

    public init(directory: String, environment: EnvironmentInterpolator = EnvironmentInterpolator(),
                context: ConnectorBuildContext = ConnectorBuildContext()) {
        self.directory = directory
        self.environment = environment
        self.context = context
    }

    /// The configuration with every problem found; problems of severity `.error` mean it must not be used.
    public func load() -> (Configuration, [ConfigurationProblem]) {
        Configuration.load(directory: directory, environment: environment, context: context)
    }
}
