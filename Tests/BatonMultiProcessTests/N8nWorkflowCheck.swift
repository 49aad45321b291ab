import BatonTestSupport
import Foundation

/// A shipped n8n workflow file (`Deploy/n8n/NAME.json`): a JSON array of workflows, the form
/// `n8n import:workflow --input=FILE` accepts, checked against ``N8nNodeDefinitions``.
struct N8nWorkflowFile {
    /// One workflow of the file, as n8n exports it.
    struct Workflow {
        let id: String
        let name: String
        let nodes: [[String: Any]]
        let connections: [String: Any]

        /// The node called `name`.
        func node(named name: String) -> [String: Any]? {
            nodes.first { $0["name"] as? String == name }
        }

        /// The nodes of one type, in file order.
        func nodes(ofType type: String) -> [[String: Any]] {
            nodes.filter { $0["type"] as? String == type }
        }
    }

    /// A file that is not a list of workflows.
    struct FormatError: Error, CustomStringConvertible {
        let description: String
    }

    let path: URL
    let workflows: [Workflow]

    /// Workflows already parsed (a test's altered copy of a file).
    init(path: URL, workflows: [Workflow]) {
        self.path = path
        self.workflows = workflows
    }

    /// Reads and parses `Deploy/n8n/<name>`.
    /// - Throws: ``FormatError`` when the file is not valid JSON or not an array of workflows with
    ///   `id`, `name`, `nodes` and `connections`.
    init(named name: String) throws {
        path = ShippedDeployment.repositoryRoot.appendingPathComponent("Deploy/n8n/\(name)")
        let data = try Data(contentsOf: path)
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw FormatError(description: "\(path.path) is not valid JSON: \(error)")
        }
        guard let list = parsed as? [[String: Any]] else {
            throw FormatError(
                description: "\(path.path): expected a JSON array of workflows (what import:workflow reads)")
        }
        workflows = try list.enumerated().map { index, object in
            guard let id = object["id"] as? String, let name = object["name"] as? String,
                let nodes = object["nodes"] as? [[String: Any]],
                let connections = object["connections"] as? [String: Any]
            else {
                throw FormatError(description: "\(Self.self) \(index) lacks id, name, nodes or connections")
            }
            return Workflow(id: id, name: name, nodes: nodes, connections: connections)
        }
    }

    /// Everything in the file that n8n's node definitions (as far as ``N8nNodeDefinitions`` has
    /// them) would reject or that would not run: one line per problem, empty when the file is fine.
    func problems() -> [String] {
        var problems: [String] = []
        if Set(workflows.map(\.id)).count != workflows.count { problems.append("workflow ids repeat") }
        for workflow in workflows {
            let context = "\(path.lastPathComponent) › \(workflow.name)"
            let names = workflow.nodes.compactMap { $0["name"] as? String }
            if Set(names).count != workflow.nodes.count {
                problems.append("\(context): node names missing or repeated")
            }
            for node in workflow.nodes {
                problems += nodeProblems(node).map { "\(context) › \(node["name"] ?? "?"): \($0)" }
                problems += referenceProblems(node, names: Set(names)).map {
                    "\(context) › \(node["name"] ?? "?"): \($0)"
                }
            }
            problems += connectionProblems(workflow).map { "\(context): \($0)" }
        }
        return problems
    }

    // MARK: - Nodes

    private func nodeProblems(_ node: [String: Any]) -> [String] {
        guard let type = node["type"] as? String, let definition = N8nNodeDefinitions.types[type] else {
            return ["unknown node type \(node["type"] ?? "nil")"]
        }
        var problems: [String] = []
        let version = (node["typeVersion"] as? NSNumber)?.doubleValue ?? -1
        if !definition.versions.contains(version) {
            problems.append("\(type) has no typeVersion \(version) (has \(definition.versions.sorted()))")
        }
        if node["id"] as? String == nil || (node["position"] as? [Any])?.count != 2 {
            problems.append("needs an id and a two-number position")
        }
        let parameters = node["parameters"] as? [String: Any] ?? [:]
        var allowed = definition.parameters
        if type == "n8n-nodes-base.redis", let operation = parameters["operation"] as? String {
            allowed = (N8nNodeDefinitions.redisParametersByOperation[operation] ?? []).union(["operation"])
        }
        for name in Set(parameters.keys).subtracting(allowed).sorted() {
            problems.append("parameter \(name) is not one of \(type)'s (for this operation)")
        }
        for (path, names) in definition.collections {
            for case let collection as [String: Any] in Self.values(at: path, in: parameters) {
                for name in Set(collection.keys).subtracting(names).sorted() {
                    problems.append("\(path) has no \(name) in \(type)")
                }
            }
        }
        for (path, choices) in definition.values {
            for case let value as String in Self.values(at: path, in: parameters)
            where !value.hasPrefix("=") && !choices.contains(value) {
                problems.append("\(path) = \(value) is not one of \(choices.sorted())")
            }
        }
        let credentials = (node["credentials"] as? [String: Any]) ?? [:]
        for name in Set(credentials.keys).subtracting(definition.credentials).sorted() {
            problems.append("\(type) takes no \(name) credential")
        }
        if let generic = parameters["genericAuthType"] as? String, credentials[generic] == nil {
            problems.append("genericAuthType \(generic) but no \(generic) credential")
        }
        return problems
    }

    /// The values found at a dotted path such as `options.response.response` or
    /// `headerParameters.parameters[].name` (`[]` steps into every element of an array).
    static func values(at path: String, in parameters: [String: Any]) -> [Any] {
        var current: [Any] = [parameters]
        for step in path.split(separator: ".") {
            let isArray = step.hasSuffix("[]")
            let key = String(isArray ? step.dropLast(2) : step)
            current = current.compactMap { ($0 as? [String: Any])?[key] }
            if isArray { current = current.flatMap { $0 as? [Any] ?? [] } }
        }
        return current
    }

    /// Every string inside a parameter value, however deep.
    static func strings(in value: Any) -> [String] {
        switch value {
        case let text as String: return [text]
        case let object as [String: Any]: return object.values.flatMap(strings(in:))
        case let list as [Any]: return list.flatMap(strings(in:))
        default: return []
        }
    }

    // MARK: - References and connections

    /// `$('Node')` in expressions must name a node of the same workflow; an Execute Workflow node
    /// must call a workflow of this file with exactly the inputs its trigger declares.
    private func referenceProblems(_ node: [String: Any], names: Set<String>) -> [String] {
        var problems: [String] = []
        for text in Self.strings(in: node["parameters"] ?? [String: Any]()) {
            for match in text.matches(of: #/\$\('([^']+)'\)/#) where !names.contains(String(match.1)) {
                problems.append("an expression reads $('\(match.1)'), which is not a node here")
            }
        }
        guard node["type"] as? String == "n8n-nodes-base.executeWorkflow" else { return problems }
        let parameters = node["parameters"] as? [String: Any] ?? [:]
        let target = Self.values(at: "workflowId.value", in: parameters).first as? String
        guard let called = workflows.first(where: { $0.id == target }) else {
            return problems + ["calls workflow \(target ?? "nil"), which is not in this file"]
        }
        let declared = Set(
            called.nodes(ofType: "n8n-nodes-base.executeWorkflowTrigger").flatMap {
                Self.values(at: "workflowInputs.values[].name", in: $0["parameters"] as? [String: Any] ?? [:])
            }.compactMap { $0 as? String })
        let mapped = Self.values(at: "workflowInputs.value", in: parameters).first as? [String: Any] ?? [:]
        let given = Set(mapped.keys)
        if declared != given {
            problems.append("passes \(given.sorted()) to \(called.name), whose trigger declares \(declared.sorted())")
        }
        return problems
    }

    /// Connections name existing nodes, use outputs the node has, and every node but the trigger
    /// has an input.
    private func connectionProblems(_ workflow: Workflow) -> [String] {
        var problems: [String] = []
        var fed = Set<String>()
        for (source, value) in workflow.connections {
            guard let node = workflow.node(named: source) else {
                problems.append("a connection starts at \(source), which is not a node")
                continue
            }
            let outputs = ((value as? [String: Any])?["main"] as? [[Any]]) ?? []
            let definition = (node["type"] as? String).flatMap { N8nNodeDefinitions.types[$0] }
            if outputs.count > definition?.outputs ?? 1 {
                problems.append("\(source) has \(definition?.outputs ?? 1) output(s), connections use \(outputs.count)")
            }
            for case let link as [String: Any] in outputs.joined() {
                let target = link["node"] as? String ?? ""
                if workflow.node(named: target) == nil {
                    problems.append("\(source) connects to \(target), not a node")
                }
                if link["type"] as? String != "main" || link["index"] as? Int != 0 {
                    problems.append("\(source) → \(target) is not a main connection to input 0")
                }
                fed.insert(target)
            }
        }
        for node in workflow.nodes {
            guard let name = node["name"] as? String, let type = node["type"] as? String else { continue }
            let isTrigger = N8nNodeDefinitions.types[type]?.isTrigger ?? false
            if isTrigger && fed.contains(name) { problems.append("trigger \(name) has an input") }
            if !isTrigger && !fed.contains(name) { problems.append("\(name) is never reached") }
        }
        if workflow.nodes.filter({ N8nNodeDefinitions.types[$0["type"] as? String ?? ""]?.isTrigger ?? false }).count
            != 1
        {
            problems.append("needs exactly one trigger node")
        }
        return problems
    }
}
