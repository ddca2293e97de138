import Foundation
import TestSupport
import Testing

/// The gateway's TLS listener with real clients (curl, openssl, Python's ssl): server
/// certificates from the built-in CA, STRICT / PERMISSIVE / DISABLE, the caller's SPIFFE ID in
/// `X-Forwarded-Client-Cert`, and certificate rotation under load.
extension EndToEnd {
@Suite struct MutualTLSTests {
    struct Setup {
        var daemon: Daemon
        var directory: TemporaryDirectory
        var ca: String { "\(directory.path)/alice/ca.pem" }
        var alice: String { "\(directory.path)/alice" }
    }

    /// A daemon with one echo service `who` and a client certificate for `alice`.
    func setUp(_ prefix: String) throws -> Setup {
        let directory = try TemporaryDirectory(prefix: prefix)
        let daemon = Daemon(dataDirectory: directory.path)
        try daemon.start()
        #expect(try daemon.cli("service", "create", "who", "--command", Binaries.echo).status == 0)
        #expect(eventually(timeout: .seconds(20)) { daemon.gateway("who").status == 200 })
        #expect(try daemon.cli("cert", "issue", "--identity", "alice", "--out", "\(directory.path)/alice").status == 0)
        return Setup(daemon: daemon, directory: directory)
    }

    /// curl over TLS to `who`; returns (exit status, HTTP status, echoed request headers).
    func curl(_ setup: Setup, certificate: String? = nil, headers: [String] = []) throws -> (Int32, Int, [String: String]) {
        var arguments = [
            "-sS", "--max-time", "10", "--cacert", setup.ca, "-o", "-", "-w", "\n%{http_code}",
            "--resolve", "who.default.localhost:\(setup.daemon.tlsPort):127.0.0.1",
        ]
        if let certificate { arguments += ["--cert", "\(certificate)/cert.pem", "--key", "\(certificate)/key.pem"] }
        for header in headers { arguments += ["-H", header] }
        arguments.append("https://who.default.localhost:\(setup.daemon.tlsPort)/")
        let result = try run("/usr/bin/curl", arguments)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let body = lines.dropLast().joined(separator: "\n")
        let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        let echoed = (json?["headers"] as? [String: String]) ?? [:]
        return (result.status, status, Dictionary(uniqueKeysWithValues: echoed.map { ($0.key.lowercased(), $0.value) }))
    }

    @Test func strictPermissiveDisableAndForwardedClientCert() async throws {
        try await onThread {
            let setup = try setUp("outpost-mtls")
            defer { setup.daemon.stop(); setup.directory.remove() }
            let alice = "spiffe://outpost.local/ns/default/sa/alice"

            // PERMISSIVE (default): TLS with or without a client certificate, and plaintext.
            let anonymous = try curl(setup)
            #expect(anonymous.0 == 0 && anonymous.1 == 200, "\(anonymous)")
            #expect(anonymous.2["x-forwarded-proto"] == "https" && anonymous.2["x-forwarded-client-cert"] == nil, "\(anonymous.2)")
            let mutual = try curl(setup, certificate: setup.alice)
            #expect(mutual.1 == 200 && mutual.2["x-forwarded-client-cert"]?.contains("URI=\(alice)") == true, "\(mutual.2)")
            // A forged XFCC is dropped; a verified client gets only the gateway's.
            let forged = try curl(setup, headers: ["X-Forwarded-Client-Cert: By=x;URI=spiffe://outpost.local/ns/default/sa/admin"])
            #expect(forged.1 == 200 && forged.2["x-forwarded-client-cert"] == nil, "\(forged.2)")
            let forgedWithCertificate = try curl(setup, certificate: setup.alice, headers: ["X-Forwarded-Client-Cert: URI=spiffe://evil"])
            #expect(forgedWithCertificate.2["x-forwarded-client-cert"] == "By=spiffe://outpost.local/ns/outpost-system/sa/gateway;URI=\(alice)", "\(forgedWithCertificate.2)")
            #expect(setup.daemon.gateway("who").status == 200)

            // STRICT: a client certificate from the platform's CA is required.
            #expect(try setup.daemon.cli("security", "mtls", "--mode", "STRICT").status == 0)
            #expect(try curl(setup).0 != 0, "no client certificate: the handshake fails")
            let stranger = "\(setup.directory.path)/stranger"
            try FileManager.default.createDirectory(atPath: stranger, withIntermediateDirectories: true)
            _ = try run("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=stranger",
                "-addext", "subjectAltName=URI:\(alice)", "-keyout", "\(stranger)/key.pem", "-out", "\(stranger)/cert.pem", "-days", "1",
            ])
            #expect(try curl(setup, certificate: stranger).0 != 0, "a certificate from another CA fails")
            let expired = "\(setup.directory.path)/expired"
            try makeExpiredCertificate(caDirectory: "\(setup.directory.path)/ca", out: expired, spiffeID: alice)
            #expect(try curl(setup, certificate: expired).0 != 0, "an expired certificate fails")
            let strict = try curl(setup, certificate: setup.alice)
            #expect(strict.1 == 200 && strict.2["x-forwarded-client-cert"]?.contains("URI=\(alice)") == true, "\(strict)")
            let plaintext = setup.daemon.gateway("who")
            #expect(plaintext.status == 403 && plaintext.text.contains("STRICT"), "\(plaintext.status) \(plaintext.text)")
            // openssl s_client: refused without a certificate, served with alice's.
            func sClient(_ extra: String) throws -> String {
                let request = #"printf 'GET / HTTP/1.1\r\nHost: who.default.localhost\r\nConnection: close\r\n\r\n'"#
                return try run("/bin/sh", ["-c", "(\(request); sleep 1) | /usr/bin/openssl s_client -quiet -connect 127.0.0.1:\(setup.daemon.tlsPort) -servername who.default.localhost -CAfile \(setup.ca) \(extra) 2>&1"]).stdout
            }
            let refused = try sClient("")
            #expect(refused.contains("certificate required") && !refused.contains("HTTP/1.1 200"), "\(refused.suffix(400))")
            let served = try sClient("-cert \(setup.alice)/cert.pem -key \(setup.alice)/key.pem")
            #expect(served.contains("HTTP/1.1 200") && served.contains("URI=\(alice)"), "\(served.suffix(400))")

            // DISABLE: TLS without client certificates, and plaintext.
            #expect(try setup.daemon.cli("security", "mtls", "--mode", "DISABLE").status == 0)
            #expect(try curl(setup).1 == 200)
            let ignored = try curl(setup, certificate: setup.alice)
            #expect(ignored.1 == 200 && ignored.2["x-forwarded-client-cert"] == nil, "\(ignored.2)")
            #expect(setup.daemon.gateway("who").status == 200)
            // The mode survives a restart.
            #expect(setup.daemon.stop() == 0)
            try setup.daemon.start()
            #expect(try setup.daemon.cli("security", "mtls").stdout.contains("DISABLE"))
            let scoped = setup.daemon.api("PUT", "/api/v1/security/mtls", body: #"{"mode":"SOMETIMES","namespace":"shop"}"#)
            #expect(scoped.status == 400 && scoped.text.contains("\"field\":\"spec.mtls.mode\""), "\(scoped.text)")
        }
    }

    @Test func certificateRotationUnderLoadFailsNoRequest() async throws {
        try await onThread {
            let setup = try setUp("outpost-rotate")
            defer { setup.daemon.stop(); setup.directory.remove() }
            #expect(try setup.daemon.cli("security", "mtls", "--mode", "STRICT").status == 0)
            // Three gateway certificate rotations during 4 s of load.
            let text = try tlsLoad(setup, ca: setup.ca, certificate: setup.alice) {
                for _ in 0..<3 {
                    usleep(1_000_000)
                    #expect(setup.daemon.api("POST", "/api/v1/security/gateway-certificate/rotate").status == 200)
                }
            }
            #expect(text.contains("failed=0"), "\(text)")
            let ok = text.split(separator: "ok=").last.flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
            #expect(ok > 20, "\(text)")
            #expect(setup.daemon.log().components(separatedBy: "gateway certificate installed").count >= 5)
        }
    }

    /// Python's ssl client against `who` over TLS for 4 s (keep-alive and fresh connections,
    /// with the client certificate in folder `certificate`, trusting `ca`) while `during` runs;
    /// returns its `ok=N failed=M` report and any errors.
    func tlsLoad(_ setup: Setup, ca: String, certificate: String, during: () throws -> Void) throws -> String {
        let script = """
        import http.client, ssl, sys, time
        port, ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        context = ssl.create_default_context(cafile=ca)
        context.check_hostname = False
        context.load_cert_chain(cert, key)
        ok = failed = 0
        deadline = time.time() + 4
        kept = None
        n = 0
        while time.time() < deadline:
            n += 1
            try:
                if kept is None or n % 5 == 0:
                    kept = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
                kept.request("GET", "/", headers={"Host": "who.default.localhost"})
                r = kept.getresponse(); r.read()
                ok += r.status == 200; failed += r.status != 200
            except Exception as e:
                failed += 1; kept = None; print("error", e)
        print(f"ok={ok} failed={failed}")
        """
        let scriptPath = "\(setup.directory.path)/load.py"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let group = DispatchGroup()
        let output = LockedBox("")
        group.enter()
        DispatchQueue.global().async {
            let result = try? run(EndToEnd.InferenceServiceTests.testPython, [scriptPath, String(setup.daemon.tlsPort), ca, "\(certificate)/cert.pem", "\(certificate)/key.pem"])
            output.set((result?.stdout ?? "") + (result?.stderr ?? ""))
            group.leave()
        }
        try during()
        group.wait()
        return output.get()
    }

    /// A certificate for `spiffeID` signed by the platform's CA that expired yesterday (Python's
    /// cryptography package, from the test venv, signs it with the CA key).
    func makeExpiredCertificate(caDirectory: String, out: String, spiffeID: String) throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let script = """
        import datetime, sys
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
        ca_dir, out, spiffe = sys.argv[1:4]
        ca_key = serialization.load_pem_private_key(open(ca_dir + "/root-key.pem", "rb").read(), None)
        ca = x509.load_pem_x509_certificate(open(ca_dir + "/root.pem", "rb").read())
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired")]))
                .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=3)).not_valid_after(now - datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe)]), False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
                .sign(ca_key, hashes.SHA256()))
        open(out + "/cert.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
        open(out + "/key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        """
        let result = try run(EndToEnd.InferenceServiceTests.testPython, ["-c", script, caDirectory, out, spiffeID])
        #expect(result.status == 0, "\(result.stderr)")
    }
}
}

/// A value shared between threads.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ newValue: Value) { lock.lock(); value = newValue; lock.unlock() }
}
