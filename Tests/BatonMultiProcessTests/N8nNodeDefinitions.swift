import Foundation

/// What the shipped n8n workflows (`Deploy/n8n/*.json`) may use: node types, their type versions,
/// parameter names and option values, copied by hand from n8n's own node definitions.
///
/// Read in n8n's public repository (`n8n-io/n8n`; `packages/cli/package.json` says version 2.41.0
/// at commit 0016ab154eb0be3af0f8bdffab79e854d1019d21). The files, each at the commit read:
/// - `packages/nodes-base/nodes/Redis/Redis.node.ts` (07abd4890e755579767e4c8b6f288259fdac9edd; the
///   parameter names and values below are unchanged in every later version read) and `utils.ts`
///   (14631178d66d8df851410f84360e17a1cb8f8134: `getValue` sends `TYPE` first for Key Type
///   "Automatic", then `GET` for "String"; Push is `lPush`, or `rPush` with Tail on);
/// - `packages/nodes-base/nodes/HttpRequest/V3/Description.ts` (0059f6b1b4c3e29b7248681b66614fc2e3637699)
///   and `HttpRequestV3.node.ts` (00005e7ed2c2041f6d60684e3edcac01f843fdc4: versions 3 to 4.4);
/// - `packages/nodes-base/nodes/If/V2/IfV2.node.ts` (08c9f232cb2cc7fe17d9238a3d4f20f13866f90b: 2, 2.1, 2.2);
/// - `packages/nodes-base/nodes/Wait/Wait.node.ts` (versions 1 and 1.1; `resume`, `amount`, `unit`);
/// - `packages/nodes-base/nodes/ExecuteWorkflow/ExecuteWorkflow/ExecuteWorkflow.node.ts` and
///   `ExecuteWorkflowTrigger/ExecuteWorkflowTrigger.node.ts` (0286e043e6c9f0831ddbb5dc47e8709c065d1607),
///   `ExecuteWorkflow/constants.ts` (dacd1907f3a6dc5afccad475da7995820371db4b).
enum N8nNodeDefinitions {
    /// One node type at one type version.
    struct NodeType {
        /// The type versions the definition declares (those the files may use).
        let versions: Set<Double>
        /// Top-level parameter names.
        let parameters: Set<String>
        /// The names allowed inside each `collection` parameter (`options` and the like).
        let collections: [String: Set<String>]
        /// The values allowed for `options`-type parameters.
        let values: [String: Set<String>]
        /// The credential types a node of this type may name.
        let credentials: Set<String>
        /// How many `main` outputs the node has.
        let outputs: Int
        /// Whether the node starts a workflow (and so has no input).
        let isTrigger: Bool

        init(
            versions: Set<Double>, parameters: Set<String> = [], collections: [String: Set<String>] = [:],
            values: [String: Set<String>] = [:], credentials: Set<String> = [], outputs: Int = 1,
            isTrigger: Bool = false
        ) {
            self.versions = versions
            self.parameters = parameters
            self.collections = collections
            self.values = values
            self.credentials = credentials
            self.outputs = outputs
            self.isTrigger = isTrigger
        }
    }

    /// The Redis node's parameters for each operation (its `displayOptions.show.operation`).
    static let redisParametersByOperation: [String: Set<String>] = [
        "delete": ["key"],
        "get": ["propertyName", "key", "keyType", "options"],
        "incr": ["key", "expire", "ttl"],
        "info": [],
        "keys": ["keyPattern", "getValues"],
        "pop": ["list", "tail", "propertyName", "options"],
        "publish": ["channel", "messageData"],
        "push": ["list", "messageData", "tail"],
        "set": ["key", "value", "keyType", "valueIsJSON", "expire", "ttl"],
    ]

    /// Every node type the shipped workflows may use, by its `type` string.
    static let types: [String: NodeType] = [
        "n8n-nodes-base.redis": NodeType(
            versions: [1],
            parameters: Set(redisParametersByOperation.values.joined()).union(["operation"]),
            collections: ["options": ["dotNotation"]],
            values: [
                "operation": Set(redisParametersByOperation.keys),
                "keyType": ["automatic", "hash", "list", "sets", "string"],
            ],
            credentials: ["redis"]),
        "n8n-nodes-base.httpRequest": NodeType(
            versions: [3, 4, 4.1, 4.2, 4.3, 4.4],
            parameters: [
                "curlImport", "method", "url", "authentication", "nodeCredentialType", "genericAuthType",
                "provideSslCertificates", "sendQuery", "specifyQuery", "queryParameters", "jsonQuery",
                "sendHeaders", "specifyHeaders", "headerParameters", "jsonHeaders", "sendBody", "contentType",
                "specifyBody", "bodyParameters", "jsonBody", "body", "inputDataFieldName", "rawContentType",
                "options",
            ],
            collections: [
                "options": [
                    "batching", "allowUnauthorizedCerts", "requestUncompressedResponse", "queryParameterArrays",
                    "lowercaseHeaders", "redirect", "response", "pagination", "proxy", "timeout",
                    "sendCredentialsOnCrossOriginRedirect",
                ],
                "options.response.response": ["fullResponse", "neverError", "responseFormat", "outputPropertyName"],
                "headerParameters.parameters[]": ["name", "value"],
                "queryParameters.parameters[]": ["name", "value"],
            ],
            values: [
                "method": ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"],
                "authentication": ["none", "predefinedCredentialType", "genericCredentialType"],
                // Generic credential types n8n-nodes-base ships (package.json's `n8n.credentials`).
                "genericAuthType": [
                    "httpBasicAuth", "httpBearerAuth", "httpDigestAuth", "httpHeaderAuth", "httpQueryAuth",
                    "httpCustomAuth", "oAuth1Api", "oAuth2Api",
                ],
                "specifyQuery": ["keypair", "json"],
                "specifyHeaders": ["keypair", "json"],
                "contentType": ["form-urlencoded", "multipart-form-data", "json", "binaryData", "raw"],
                "specifyBody": ["keypair", "json", "string"],
                "options.response.response.responseFormat": ["autodetect", "file", "json", "text"],
            ],
            credentials: [
                "httpBasicAuth", "httpBearerAuth", "httpDigestAuth", "httpHeaderAuth", "httpQueryAuth",
                "httpCustomAuth", "oAuth1Api", "oAuth2Api", "httpSslAuth",
            ]),
        "n8n-nodes-base.if": NodeType(
            versions: [2, 2.1, 2.2],
            parameters: ["conditions", "looseTypeValidation", "options"],
            collections: ["options": ["ignoreCase", "looseTypeValidation"]],
            outputs: 2),
        "n8n-nodes-base.wait": NodeType(
            versions: [1, 1.1],
            parameters: [
                "resume", "amount", "unit", "dateTime", "incomingAuthentication", "httpMethod", "responseCode",
                "responseMode", "responseData", "responseBinaryPropertyName", "limitWaitTime", "limitType",
                "resumeAmount", "resumeUnit", "maxDateAndTime", "options",
            ],
            values: [
                "resume": ["timeInterval", "specificTime", "webhook", "form"],
                "unit": ["seconds", "minutes", "hours", "days"],
            ]),
        "n8n-nodes-base.executeWorkflow": NodeType(
            versions: [1, 1.1, 1.2],
            parameters: [
                "operation", "source", "workflowId", "workflowPath", "workflowJson", "workflowUrl", "workflowInputs",
                "mode",
                "options",
            ],
            collections: ["options": ["waitForSubWorkflow"]],
            values: [
                "source": ["database", "localFile", "parameter", "url"],
                "mode": ["once", "each"],
            ]),
        "n8n-nodes-base.executeWorkflowTrigger": NodeType(
            versions: [1, 1.1],
            parameters: ["events", "inputSource", "jsonExample", "workflowInputs", "inputOptions"],
            collections: [
                "inputOptions": ["attemptToConvertTypes", "ignoreTypeErrors"],
                "workflowInputs.values[]": ["name", "type"],
            ],
            values: [
                "inputSource": ["workflowInputs", "jsonExample", "passthrough"],
                "workflowInputs.values[].type": ["any", "string", "number", "boolean", "array", "object"],
            ],
            isTrigger: true),
        // Manual Trigger and No Operation: their files were not read for this table; n8n exports
        // both with empty parameters, which is all the shipped files give them.
        "n8n-nodes-base.manualTrigger": NodeType(versions: [1], isTrigger: true),
        "n8n-nodes-base.noOp": NodeType(versions: [1]),
    ]
}
