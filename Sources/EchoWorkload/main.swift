// outpost-echo: the sample workload for Outpost.
//
// A deliberately tiny HTTP/1.1 server that follows the Knative runtime contract (listen on $PORT,
// report K_SERVICE / K_CONFIGURATION / K_REVISION, drain and exit 0 on SIGTERM). It is what the
// README quickstart deploys, what the end-to-end tests drive and what the cold-start benchmarks
// measure, so it only uses Glibc and the Swift standard library (no Foundation, no packages) and
// is listening within a few milliseconds of exec.
//
// Every request is echoed back as JSON; query parameters (`delay`, `status`, `crash`, `bytes`,
// `echo`, `fail`) and environment knobs (`ECHO_START_DELAY`, `ECHO_EXIT_ON_START`,
// `ECHO_NEVER_LISTEN`, `ECHO_FAIL_FILE`, `ECHO_RECORD_FILE`) let tests provoke slow, failing,
// crashing and never-ready workloads and see what reached them. A GET with `Upgrade: websocket`
// becomes a WebSocket echo (WebSocket.swift). See Handler.swift for the request behaviour, Faults.swift for the failure and recording knobs and Server.swift for the
// process lifecycle.

import Glibc

// A peer that disappears mid-response must produce EPIPE, not kill the process.
signal(SIGPIPE, SIG_IGN)
// Before any other thread exists, so every thread inherits the blocked mask and only the
// dedicated signal thread ever sees SIGTERM / SIGINT.
installSignalHandling()

// Crash-loop simulation: exit before doing anything else.
if let text = environment("ECHO_EXIT_ON_START") {
    guard let code = Int32(text) else {
        fail("invalid ECHO_EXIT_ON_START '\(text)': expected an integer exit code", code: 2)
    }
    logError("ECHO_EXIT_ON_START=\(code): exiting without listening")
    exit(code)
}

// Validates HOST / PORT and renders the constant part of the echo response.
let settings = Config.shared

// Slow-start simulation; a SIGTERM during the delay still exits 0 promptly.
if let text = environment("ECHO_START_DELAY") {
    guard let micros = parseDuration(text) else {
        fail("invalid ECHO_START_DELAY '\(text)': expected e.g. 250ms, 2s or a number of milliseconds", code: 2)
    }
    logInfo("ECHO_START_DELAY=\(text): waiting before listening")
    if Shutdown.wait(micros: micros) { exit(0) }
}

// Never-ready simulation: keep running without ever opening the port.
if environment("ECHO_NEVER_LISTEN") == "1" {
    logInfo("ECHO_NEVER_LISTEN=1: never opening the port")
    _ = Shutdown.wait(micros: nil)
    exit(0)
}

let listener = openListener(host: settings.host, port: settings.port)
logInfo("listening on \(settings.displayAddress) (revision \(settings.revision))")
acceptConnections(on: listener)
close(listener)
drainAndExit()
