import Gateway

/// Worker choice under a traffic policy: load balancer, outlier ejection and the retry hint.
/// The default (least request, nothing ejected, no hint) keeps ``PoolState/lease(now:hint:)``
/// on its allocation-free path.
extension PoolState {
    /// Whether choosing a worker needs more than the default least-request scan.
    func needsPolicyChoice(_ hint: LeaseHint) -> Bool {
        workerPolicy.loadBalancer != .leastRequest || hint.avoiding != nil
            || outliers.values.contains { $0.ejectedUntil != nil }
    }

    /// The worker for the next lease under the policy, or `nil` when none has capacity.
    mutating func chooseWorker(hint: LeaseHint, now: ContinuousClock.Instant) -> UInt64? {
        returnEjectedWorkers(now: now)
        let ready = workers.filter { $0.value.machine.state == .ready }.map(\.key)
        let healthy = ready.filter { outliers[$0]?.ejectedUntil == nil }
        // Panic mode: with every ready worker ejected, ejected workers serve.
        let pool = healthy.isEmpty ? ready : healthy
        var candidates = pool.filter { workers[$0]!.machine.hasCapacity }.sorted()
        if let avoided = hint.avoiding, candidates.count > 1 { candidates.removeAll { $0 == avoided } }
        guard !candidates.isEmpty else { return nil }
        switch workerPolicy.loadBalancer {
        case .roundRobin:
            let next = candidates.first { $0 > roundRobinCursor } ?? candidates[0]
            roundRobinCursor = next
            return next
        case .random:
            return candidates.randomElement()
        case .consistentHash:
            if let hash = hint.hash {
                return candidates.max { Self.rendezvous(hash, $0) < Self.rendezvous(hash, $1) }
            }
            return leastRequest(among: candidates)
        case .leastRequest:
            return leastRequest(among: candidates)
        }
    }

    /// Knative's choice among `candidates` (sorted by id).
    private func leastRequest(among candidates: [UInt64]) -> UInt64? {
        switch policy {
        case .firstAvailable: return candidates.first
        case .leastLoaded: return candidates.min { workers[$0]!.machine.inFlight < workers[$1]!.machine.inFlight }
        }
    }

    /// Rendezvous (highest random weight) score of a worker for a key.
    static func rendezvous(_ hash: UInt64, _ workerID: UInt64) -> UInt64 {
        var z = hash ^ (workerID &* 0x9E37_79B9_7F4A_7C15)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Counts a finished lease towards its worker's consecutive errors and ejects the worker
    /// when it reaches a threshold (see ``OutlierDetection``).
    mutating func recordOutcome(_ outcome: UpstreamOutcome, workerID: UInt64, now: ContinuousClock.Instant) {
        guard let detection = workerPolicy.outlierDetection, workers[workerID] != nil else { return }
        var record = outliers[workerID] ?? OutlierRecord()
        switch outcome {
        case .completed:
            return
        case .responded(let status) where status < 500:
            record.consecutive5xx = 0
            record.consecutiveGateway = 0
        case .responded(let status):
            record.consecutive5xx += 1
            record.consecutiveGateway = (502...504).contains(status) ? record.consecutiveGateway + 1 : 0
        case .connectFailed, .timedOut:
            record.consecutive5xx += 1
            record.consecutiveGateway += 1
        }
        let tripped = (detection.consecutive5xxErrors > 0 && record.consecutive5xx >= detection.consecutive5xxErrors)
            || (detection.consecutiveGatewayErrors > 0 && record.consecutiveGateway >= detection.consecutiveGatewayErrors)
        if tripped, record.ejectedUntil == nil, mayEjectAnother(detection) {
            if let back = record.returnedAt {
                let quietIntervals = Int(((now - back) / detection.interval).rounded(.down))
                record.ejections = max(0, record.ejections - quietIntervals)
            }
            record.ejections += 1
            // Envoy caps the growth at `max_ejection_time` (300 s, or the base when longer).
            let cap = max(.seconds(300), detection.baseEjectionTime)
            record.ejectedUntil = now + min(detection.baseEjectionTime * record.ejections, cap)
            record.consecutive5xx = 0
            record.consecutiveGateway = 0
        }
        outliers[workerID] = record
    }

    /// At most `maxEjectionPercent` of the active workers, but at least one, are ejected at once.
    private func mayEjectAnother(_ detection: OutlierDetection) -> Bool {
        let ejected = outliers.values.count { $0.ejectedUntil != nil }
        let allowed = max(1, activeWorkers * detection.maxEjectionPercent / 100)
        return ejected < allowed
    }

    /// Ends ejections whose time is up and forgets workers that are gone.
    mutating func returnEjectedWorkers(now: ContinuousClock.Instant) {
        for (id, record) in outliers {
            guard workers[id] != nil else {
                outliers.removeValue(forKey: id)
                continue
            }
            if let until = record.ejectedUntil, until <= now {
                outliers[id]!.ejectedUntil = nil
                outliers[id]!.returnedAt = now
            }
        }
    }

    /// Workers ejected right now.
    func ejectedWorkers(now: ContinuousClock.Instant) -> [UInt64] {
        outliers.filter { $0.value.ejectedUntil.map { $0 > now } ?? false }.map(\.key).sorted()
    }

    /// Switches to a new policy; dropping outlier detection returns every ejected worker.
    mutating func apply(_ newPolicy: WorkerPolicy) {
        guard newPolicy != workerPolicy else { return }
        workerPolicy = newPolicy
        if newPolicy.outlierDetection == nil { outliers.removeAll() }
    }
}
