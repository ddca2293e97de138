import Foundation
import Gateway
import Glibc
import Logging
import NIOPosix
@testable import Platform
import Store
import Synchronization
import Testing

/// A fresh temporary folder, removed by the caller.
private func temporaryFolder(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("outpost-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
}

private func contents(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

/// The CA's files after a crash part-way through a rotation step, and files that do not go
/// together.
@Suite struct CertificateAuthorityRecoveryTests {
    let trustDomain = "outpost.local"

    @Test func activationCutShortAfterRootKeyRollsForward() throws {
        let directory = temporaryFolder("ca-roll-forward")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let oldRoot = try createCA(in: directory, reading: "\(directory)/root.pem")
        let authority = try CertificateAuthority(directory: directory, trustDomain: trustDomain)
        try authority.rotate(.prepare)
        let nextRoot = try contents("\(directory)/next.pem")
        // What `activate` writes before root.pem: previous.pem, then root-key.pem.
        try CertificateAuthority.writeFile("\(directory)/previous.pem", oldRoot + "\n", mode: 0o644)
        try CertificateAuthority.writeFile("\(directory)/root-key.pem", try contents("\(directory)/next-key.pem"), mode: 0o600)

        let reloaded = try CertificateAuthority(directory: directory, trustDomain: trustDomain)
        #expect(try contents("\(directory)/root.pem") == nextRoot)
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/next.pem"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/next-key.pem"))
        #expect(reloaded.rootInfo.map(\.role) == ["signing", "previous"])
        #expect(reloaded.trustBundlePEM == nextRoot + "\n" + oldRoot + "\n")
        // The files now go together.
        #expect(try CertificateAuthority(directory: directory, trustDomain: trustDomain).rootInfo.map(\.role) == ["signing", "previous"])
    }

    @Test func activationCutShortBeforeRootKeyKeepsTheNextRootPrepared() throws {
        let directory = temporaryFolder("ca-before-key")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let oldRoot = try createCA(in: directory, reading: "\(directory)/root.pem")
        try CertificateAuthority(directory: directory, trustDomain: trustDomain).rotate(.prepare)
        try CertificateAuthority.writeFile("\(directory)/previous.pem", oldRoot + "\n", mode: 0o644)

        let reloaded = try CertificateAuthority(directory: directory, trustDomain: trustDomain)
        #expect(reloaded.rootInfo.map(\.role) == ["signing", "next"])
        try reloaded.rotate(.activate)
        #expect(reloaded.rootInfo.map(\.role) == ["signing", "previous"])
    }

    @Test func keyMatchingNoRootFailsStartup() throws {
        let directory = temporaryFolder("ca-mismatch")
        let other = temporaryFolder("ca-other")
        defer {
            try? FileManager.default.removeItem(atPath: directory)
            try? FileManager.default.removeItem(atPath: other)
        }
        let root = try createCA(in: directory, reading: "\(directory)/root.pem")
        _ = try CertificateAuthority(directory: other, trustDomain: trustDomain)
        try CertificateAuthority.writeFile("\(directory)/root-key.pem", try contents("\(other)/root-key.pem"), mode: 0o600)

        let error = #expect(throws: DaemonError.self) { try CertificateAuthority(directory: directory, trustDomain: trustDomain) }
        #expect(error?.description.contains("\(directory)/root-key.pem matches neither \(directory)/root.pem") == true)
        #expect(try contents("\(directory)/root.pem") == root)
    }

    @Test(arguments: ["root.pem", "root-key.pem"])
    func oneRootFileMissingFailsStartup(missing: String) throws {
        let directory = temporaryFolder("ca-missing")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let root = try createCA(in: directory, reading: "\(directory)/root.pem")
        let key = try contents("\(directory)/root-key.pem")
        #expect(unlink("\(directory)/\(missing)") == 0)

        let error = #expect(throws: DaemonError.self) { try CertificateAuthority(directory: directory, trustDomain: trustDomain) }
        #expect(error?.description.contains("\(directory)/\(missing) does not") == true)
        // Nothing was created over the remaining file.
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/\(missing)"))
        #expect(try contents("\(directory)/\(missing == "root.pem" ? "root-key.pem" : "root.pem")") == (missing == "root.pem" ? key : root))
    }

    /// Creates a CA in `directory` and reads one of its files.
    private func createCA(in directory: String, reading path: String) throws -> String {
        _ = try CertificateAuthority(directory: directory, trustDomain: trustDomain)
        return try String(contentsOfFile: path, encoding: .utf8)
    }
}

@Suite struct WorkloadIdentitiesTests {
    @Test func concurrentFirstIssueSharesOneIdentity() throws {
        let directory = temporaryFolder("workloads")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try CertificateAuthority(directory: "\(directory)/ca", trustDomain: "outpost.local")
        let identities = try WorkloadIdentities(
            authority: authority, securityDirectory: "\(directory)/security", lifetime: 3600, store: try Store(inMemory: ()),
            logger: Logger(label: "test"))
        // Threads of their own, so that the calls overlap even on few cores.
        let environments = Mutex<[[String: String]]>([])
        let done = DispatchGroup()
        for _ in 0..<16 {
            done.enter()
            Thread {
                let environment = identities.environment(namespace: "default", service: "pool")
                environments.withLock { $0.append(environment) }
                done.leave()
            }.start()
        }
        done.wait()

        let all = environments.withLock { $0 }
        #expect(all.count == 16)
        #expect(all.allSatisfy { !$0.isEmpty && $0 == all[0] })
        let folder = "\(directory)/security/workloads/default/pool"
        let current = try FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/current")
        #expect(FileManager.default.fileExists(atPath: "\(folder)/\(current)/cert.pem"))
        #expect(FileManager.default.fileExists(atPath: all[0]["OUTPOST_SVID_KEY"] ?? ""))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["current", current])
    }
}

@Suite struct SecurityPoliciesModeTests {
    func policies(_ directory: String) throws -> SecurityPolicies {
        let gateway = Gateway(
            configuration: GatewayConfiguration(), resolver: AdminAccessTests.NoWorkers(), eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "test"))
        return try SecurityPolicies(gateway: gateway, store: try Store(inMemory: ()), securityDirectory: directory, logger: Logger(label: "test"))
    }

    @Test func noSavedModeIsPermissive() throws {
        let directory = temporaryFolder("mode-none")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try policies(directory).currentMode == .permissive)
    }

    @Test(arguments: ["", "STRIC", "STRICT PERMISSIVE", "permissive"])
    func unparsableSavedModeFailsClosed(content: String) throws {
        let directory = temporaryFolder("mode-bad")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try CertificateAuthority.writeFile("\(directory)/mtls-mode", content, mode: 0o644)
        #expect(try policies(directory).currentMode == .strict)
    }

    @Test func savedModeSurvivesARestart() throws {
        let directory = temporaryFolder("mode-saved")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try policies(directory).setMode(.disable)
        #expect(try contents("\(directory)/mtls-mode") == "DISABLE")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/mtls-mode.tmp"))
        #expect(try policies(directory).currentMode == .disable)
    }
}

@Suite struct AdminTLSTests {
    /// The DER certificates of a PEM bundle.
    func der(_ pem: String) -> [[UInt8]] {
        pem.components(separatedBy: "-----END CERTIFICATE-----").compactMap { block in
            Data(base64Encoded: block.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()).map { Array($0) }
        }.filter { !$0.isEmpty }
    }

    @Test func clientCertificatesAreVerifiedAgainstTheCurrentRoots() async throws {
        let directory = temporaryFolder("admin-tls")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try CertificateAuthority(directory: "\(directory)/ca", trustDomain: "outpost.local")
        let stranger = try CertificateAuthority(directory: "\(directory)/other", trustDomain: "outpost.local")
        let admin = try AdminTLS(authority: authority, host: "127.0.0.1", lifetime: 3600, logger: Logger(label: "test"))
        func client(_ authority: CertificateAuthority) throws -> [[UInt8]] {
            der(try authority.issue(spiffeID: authority.spiffeID(namespace: "outpost-system", name: "ops"), commonName: "ops").certificatePEM)
        }
        let old = try client(authority)
        #expect(await admin.verify(derChain: old))
        #expect(await !admin.verify(derChain: try client(stranger)))
        #expect(await !admin.verify(derChain: []))

        try authority.rotate(.prepare)
        try authority.rotate(.activate)
        let new = try client(authority)
        #expect(await admin.verify(derChain: new))
        #expect(await admin.verify(derChain: old))

        try authority.rotate(.retire)
        #expect(await admin.verify(derChain: new))
        #expect(await !admin.verify(derChain: old))
    }
}
