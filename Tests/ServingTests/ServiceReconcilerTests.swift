import Foundation
import Gateway
import Serving
import Store
import Testing

@Suite struct ServiceReconcilerTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    func meta(_ name: String, generation: Int64 = 1) -> ResourceMeta {
        ResourceMeta(namespace: "default", name: name, uid: name, generation: generation, resourceVersion: 1, annotations: [:], createdAt: now, updatedAt: now)
    }

    func service(traffic: [TrafficTarget] = TrafficTarget.allToLatest) -> ServiceResource {
        ServiceResource(meta: meta("hello", generation: 2), spec: ServiceSpec(template: RevisionTemplate(command: "/bin/true"), traffic: traffic), status: ServiceStatus())
    }

    func revision(_ generation: Int64, ready: String?, reason: String? = nil, message: String? = nil, timeout: Int = 300) -> RevisionResource {
        var status = RevisionStatus()
        if let ready { status.conditions.set("Ready", status: ready, reason: reason, message: message, now: now) }
        return RevisionResource(
            meta: meta(Store.revisionName(service: "hello", generation: generation)), serviceName: "hello",
            configurationGeneration: generation, spec: RevisionTemplate(command: "/bin/true", timeoutSeconds: timeout), status: status)
    }

    @Test func beforeAnyRevisionIsReadyRequestsWaitForTheFirst() {
        let (status, route) = ServiceReconciler.serviceStatus(service: service(), revisions: [revision(1, ready: "Unknown")], now: now)
        #expect(route.targets.map(\.revision.name) == ["hello-00001"], "requests queue for the deploying revision")
        #expect(status.traffic.isEmpty, "status shows only ready traffic")
        #expect(status.latestCreatedRevisionName == "hello-00001")
        #expect(status.latestReadyRevisionName == nil)
        #expect(status.conditions["Ready"]?.status == "Unknown")
        #expect(status.observedGeneration == 2)
    }

    @Test func latestReadyRevisionTakesAllTraffic() {
        let (status, route) = ServiceReconciler.serviceStatus(
            service: service(), revisions: [revision(1, ready: "True"), revision(2, ready: "True", timeout: 42)], now: now)
        #expect(route.targets == [RouteTarget(revision: RevisionID(namespace: "default", name: "hello-00002"), percent: 100, timeout: .seconds(42))])
        #expect(status.traffic == [TrafficTarget(revisionName: "hello-00002", latestRevision: true, percent: 100)])
        #expect(status.conditions["Ready"]?.status == "True")
    }

    @Test func failedNewestRevisionKeepsTrafficOnThePreviousOne() {
        let (status, route) = ServiceReconciler.serviceStatus(
            service: service(),
            revisions: [revision(1, ready: "True"), revision(2, ready: "False", reason: "ExitCode", message: "worker exited with code 1")],
            now: now)
        #expect(route.targets.map(\.revision.name) == ["hello-00001"])
        #expect(status.latestCreatedRevisionName == "hello-00002")
        #expect(status.latestReadyRevisionName == "hello-00001")
        #expect(status.conditions["ConfigurationsReady"]?.reason == "RevisionFailed")
        #expect(status.conditions["Ready"]?.status == "False")
        #expect(status.conditions["Ready"]?.message?.contains("worker exited with code 1") == true)
    }

    @Test func pinnedRevisionSplitIsCompiled() {
        let traffic = [TrafficTarget(revisionName: "hello-00001", percent: 80), TrafficTarget(latestRevision: true, percent: 20)]
        let (_, route) = ServiceReconciler.serviceStatus(
            service: service(traffic: traffic), revisions: [revision(1, ready: "True"), revision(2, ready: "True")], now: now)
        #expect(route.targets.map(\.revision.name) == ["hello-00001", "hello-00002"])
        #expect(route.targets.map(\.percent) == [80, 20])
    }

    @Test func revisionStatusReflectsObservation() {
        let ready = ServiceReconciler.revisionStatus(
            previous: RevisionStatus(), observation: .init(ready: 1, desired: 1, everReady: true, failed: false), now: now)
        #expect(ready.conditions["Ready"]?.status == "True")
        #expect(ready.conditions["Active"]?.status == "True")
        #expect(ready.actualReplicas == 1)

        let atZero = ServiceReconciler.revisionStatus(
            previous: ready, observation: .init(ready: 0, desired: 0, everReady: true, failed: false), now: now + 60)
        #expect(atZero.conditions["Ready"]?.status == "True", "a revision at zero stays Ready")
        #expect(atZero.conditions["Active"]?.reason == "NoTraffic")
        #expect(atZero.conditions["Ready"]?.lastTransitionTime == now, "unchanged conditions keep their time")

        let failed = ServiceReconciler.revisionStatus(
            previous: RevisionStatus(),
            observation: .init(ready: 0, desired: 0, everReady: false, failed: true, failureReason: "ExitCode", failureMessage: "boom"),
            now: now)
        #expect(failed.conditions["Ready"]?.status == "False")
        #expect(failed.conditions["Ready"]?.reason == "ExitCode")
        #expect(failed.conditions["ContainerHealthy"]?.message == "boom")
    }

    @Test func tagsBecomeTaggedTargets() {
        let traffic = [
            TrafficTarget(revisionName: "hello-00001", percent: 0, tag: "stable"),
            TrafficTarget(latestRevision: true, percent: 100, tag: "current"),
        ]
        let (status, route) = ServiceReconciler.serviceStatus(
            service: service(traffic: traffic), revisions: [revision(1, ready: "True"), revision(2, ready: "True")], now: now)
        #expect(route.tags["stable"]?.revision.name == "hello-00001")
        #expect(route.tags["current"]?.revision.name == "hello-00002")
        #expect(route.targets.map(\.revision.name) == ["hello-00002"], "a 0 % target takes no split traffic")
        #expect(status.traffic.map(\.tag) == ["stable", "current"])
    }

    @Test func gradualRolloutMovesTrafficInSteps() {
        var stored = service()
        stored.meta.annotations = [ServiceReconciler.rolloutDurationAnnotation: "100s"]
        stored.status.latestReadyRevisionName = "hello-00001"
        let revisions = [revision(1, ready: "True"), revision(2, ready: "True")]
        func shares(at seconds: Double, previous: ServiceStatus) -> ([String: Int], ServiceStatus) {
            var service = stored
            service.status = previous
            let (status, route) = ServiceReconciler.serviceStatus(service: service, revisions: revisions, now: now + seconds)
            return (Dictionary(route.targets.map { ($0.revision.name, $0.percent) }, uniquingKeysWith: +), status)
        }
        let (start, started) = shares(at: 0, previous: stored.status)
        #expect(start == ["hello-00001": 99, "hello-00002": 1], "1 % moves first")
        #expect(started.rollout?.from == "hello-00001" && started.rollout?.to == "hello-00002")
        let (middle, _) = shares(at: 50, previous: started)
        #expect(middle["hello-00002"] == 50)
        #expect(middle["hello-00001"] == 50)
        let (end, ended) = shares(at: 100, previous: started)
        #expect(end == ["hello-00002": 100])
        #expect(ended.rollout == nil)
    }

    @Test func withoutTheAnnotationTheNewRevisionTakesAllAtOnce() {
        var stored = service()
        stored.status.latestReadyRevisionName = "hello-00001"
        let (status, route) = ServiceReconciler.serviceStatus(
            service: stored, revisions: [revision(1, ready: "True"), revision(2, ready: "True")], now: now)
        #expect(route.targets.map(\.revision.name) == ["hello-00002"])
        #expect(status.rollout == nil)
    }
}
