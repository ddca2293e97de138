import Serving
import Testing

@Suite struct WorkerStateMachineTests {
    @Test func startsThenBecomesReadyAndTakesRequests() {
        var machine = WorkerStateMachine(concurrencyLimit: 0)
        #expect(machine.state == .starting)
        let leasedWhileStarting = machine.lease()
        #expect(!leasedWhileStarting, "a starting worker takes no requests")
        #expect(machine.probeSucceeded() == .becameReady)
        #expect(machine.probeSucceeded() == .none)
        let first = machine.lease()
        let second = machine.lease()
        #expect(first && second)
        #expect(machine.inFlight == 2)
    }

    @Test func concurrencyLimitIsHard() {
        var machine = WorkerStateMachine(concurrencyLimit: 1)
        _ = machine.probeSucceeded()
        let first = machine.lease()
        let overLimit = machine.lease()
        let released = machine.release()
        let again = machine.lease()
        #expect(first)
        #expect(!overLimit)
        #expect(released == .none)
        #expect(again)
    }

    @Test func drainWaitsForInFlightRequestsThenTerminates() {
        var machine = WorkerStateMachine(concurrencyLimit: 0)
        _ = machine.probeSucceeded()
        _ = machine.lease()
        #expect(machine.drain() == .none)
        #expect(machine.state == .draining)
        let leasedWhileDraining = machine.lease()
        #expect(!leasedWhileDraining, "a draining worker takes no new requests")
        #expect(machine.release() == .terminate)
        #expect(machine.state == .terminating)
        #expect(machine.gracePeriodExpired() == .kill)
        #expect(machine.processExited(.signaled(9)) == .stopped)
    }

    @Test func idleDrainTerminatesAtOnce() {
        var machine = WorkerStateMachine(concurrencyLimit: 0)
        _ = machine.probeSucceeded()
        #expect(machine.drain() == .terminate)
        #expect(machine.processExited(.exited(0)) == .stopped)
        #expect(machine.gracePeriodExpired() == .none, "nothing to kill after exit")
    }

    @Test(arguments: [
        (false, WorkerExit.exited(1)),
        (true, WorkerExit.signaled(11)),
    ])
    func unexpectedExitIsReportedWithWhetherItWasReady(wasReady: Bool, status: WorkerExit) {
        var machine = WorkerStateMachine(concurrencyLimit: 0)
        if wasReady { _ = machine.probeSucceeded() }
        #expect(machine.processExited(status) == .unexpectedExit(status, wasReady: wasReady))
    }

    @Test func probeTimeoutTerminatesAStartingWorker() {
        var machine = WorkerStateMachine(concurrencyLimit: 0)
        #expect(machine.probeFailed() == .terminate)
        #expect(machine.state == .terminating)
        #expect(machine.probeSucceeded() == .none, "a late probe success does not revive it")
    }

    @Test func exitDescriptionsReadWell() {
        #expect(WorkerExit.exited(3).description == "exited with code 3")
        #expect(WorkerExit.signaled(9).description == "killed by signal 9")
    }
}

@Suite struct DurationTextTests {
    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)), ("30s", .seconds(30)), ("1m30s", .seconds(90)),
        ("1h", .seconds(3600)), ("1.5s", .milliseconds(1500)), ("250us", .microseconds(250)),
    ])
    func parses(text: String, expected: Duration) {
        #expect(DurationText.parse(text) == expected)
    }

    @Test(arguments: ["", "30", "s", "10x", "1m-3s", "abc"])
    func rejects(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    /// Beyond Int64 nanoseconds (one term, a sum, or a literal Double reads as infinity) is not
    /// a duration, rather than a trap.
    @Test(arguments: ["10000000000h", "2562048h", "2562047h2562047h", String(repeating: "9", count: 400) + "s"])
    func rejectsOutOfRange(text: String) {
        #expect(DurationText.parse(text) == nil)
        #expect(ServingAnnotations.problem([ServingAnnotations.frozenRetention: text])?.key == ServingAnnotations.frozenRetention)
    }

    @Test func formatsCompactly() {
        #expect(DurationText.format(.seconds(90)) == "1m30s")
        #expect(DurationText.format(.milliseconds(500)) == "500ms")
        #expect(DurationText.format(.seconds(3600)) == "1h")
    }

    @Test func annotationsAreCheckedTheWayKnativeChecksThem() {
        let window = "autoscaling.knative.dev/window"
        #expect(ServingAnnotations.problem([window: "6s"]) == nil)
        #expect(ServingAnnotations.problem([window: "5s"])?.key == window)
        #expect(ServingAnnotations.problem([window: "2h"])?.key == window)
        #expect(ServingAnnotations.problem([window: "6500ms"])?.key == window)
        #expect(ServingAnnotations.problem([window: "soon"])?.key == window)
        #expect(ServingAnnotations.problem(["example.com/anything": "x"]) == nil)
        #expect(ServingAnnotations.problem([ServingAnnotations.frozenRetention: "forever"])?.key == ServingAnnotations.frozenRetention)
        #expect(ServingAnnotations.frozenRetention([ServingAnnotations.frozenRetention: "10m"]) == .seconds(600))
        #expect(ServingAnnotations.frozenRetention([:]) == nil)
    }
}
