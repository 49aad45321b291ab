import BatonTokens

extension StructuredLog {
    /// Logs a rotated refresh token's wait for replica acknowledgements: `replicas_pending` (warn)
    /// for each attempt that fell short (it is retried), `replicas_acknowledged` (info) when such
    /// a token is acknowledged after all. Fields: `fence`, `acknowledged`, `required`, `attempt`,
    /// `waited_ms`.
    func replicaAcknowledgement(_ report: ReplicaAcknowledgementReport) {
        log(
            report.isAcknowledged ? .info : .warn,
            report.isAcknowledged ? "replicas_acknowledged" : "replicas_pending", service: report.service,
            [
                "fence": .number(report.fence), "acknowledged": .number(Int64(report.acknowledged)),
                "required": .number(Int64(report.required)), "attempt": .number(Int64(report.attempt)),
                "waited_ms": .number(report.waited.milliseconds),
            ])
    }
}
