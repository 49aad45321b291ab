import BatonSupport

/// One rotated refresh token's wait for replica acknowledgements, as the refresh or the replay
/// that stores it sees it.
struct ReplicaWait {
    /// The service.
    let service: String
    /// The fence the token was rotated under (with the replica id, what the mark is keyed on).
    let fence: Int64
    /// Whether an `awaiting-replicas` mark of this token may exist, to clear once it is settled.
    var marked: Bool
    /// Attempts that fell short in this process.
    var attempts = 0
    /// When this process started waiting (for reports when no mark could be written).
    let started = ContinuousClock.now
}

extension TokenRefresher {
    /// An attempt that fewer replicas than required acknowledged: marks the token as waiting in
    /// Redis (best effort: the mark is for operators; the wait goes on without it) and reports it.
    func fellShort(_ wait: inout ReplicaWait, acknowledged: Int) async {
        wait.attempts += 1
        wait.marked = true  // even if the reply to the mark is lost, the mark may exist
        var attempt = wait.attempts
        var waited = ContinuousClock.now - wait.started
        if let mark = try? await store.markAwaitingReplicas(
            wait.service, replica: replica, fence: wait.fence, required: acknowledgement.replicas,
            acknowledged: acknowledged, lifetime: acknowledgement.markLifetime)
        {
            attempt = mark.attempts
            waited = .milliseconds(max(0, mark.now - mark.since))
        }
        onReplicaAcknowledgement(
            ReplicaAcknowledgementReport(
                service: wait.service, fence: wait.fence, acknowledged: acknowledged,
                required: acknowledgement.replicas, attempt: attempt, waited: waited))
    }

    /// The token is acknowledged (`acknowledged` replicas) or was not stored at all (`nil`:
    /// superseded): clears its mark, and reports an acknowledgement that came late.
    func settled(_ wait: ReplicaWait, acknowledged: Int?) async {
        guard acknowledgement.isRequired, wait.marked else { return }
        let cleared = try? await store.clearAwaitingReplicas(wait.service, replica: replica, fence: wait.fence)
        guard let acknowledged, cleared != nil || wait.attempts > 0 else { return }
        onReplicaAcknowledgement(
            ReplicaAcknowledgementReport(
                service: wait.service, fence: wait.fence, acknowledged: acknowledged,
                required: acknowledgement.replicas, attempt: max(wait.attempts, cleared?.attempts ?? 0) + 1,
                waited: cleared?.waited ?? (ContinuousClock.now - wait.started)))
    }
}
