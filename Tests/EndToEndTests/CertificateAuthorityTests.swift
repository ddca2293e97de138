import Foundation
import TestSupport
import Testing

/// The built-in CA through the real binary: `outpost cert issue` and `outpost cert ca`, checked
/// with openssl.
extension EndToEnd {
@Suite struct CertificateAuthorityTests {
    @Test func issuedCertificatesVerifyAgainstTheExportedRoot() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-ca")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path, extraArguments: ["--trust-domain", "edge.example"])
            try daemon.start()
            let out = "\(directory.path)/alice"
            let issue = try daemon.cli("cert", "issue", "--identity", "alice", "--namespace", "shop", "--out", out)
            #expect(issue.status == 0, "\(issue.stderr)")
            #expect(issue.stdout.contains("spiffe://edge.example/ns/shop/sa/alice"))
            let attributes = try FileManager.default.attributesOfItem(atPath: "\(out)/key.pem")
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let caKey = try FileManager.default.attributesOfItem(atPath: "\(directory.path)/ca/root-key.pem")
            #expect((caKey[.posixPermissions] as? Int) == 0o600)

            // openssl accepts the certificate against the exported root, and it names the identity.
            let exported = "\(directory.path)/exported-ca.pem"
            #expect(try daemon.cli("cert", "ca", "--out", exported).status == 0)
            let verify = try run("/usr/bin/openssl", ["verify", "-CAfile", exported, "\(out)/cert.pem"])
            #expect(verify.status == 0 && verify.stdout.contains("OK"), "\(verify.stdout) \(verify.stderr)")
            let text = try run("/usr/bin/openssl", ["x509", "-in", "\(out)/cert.pem", "-noout", "-text"])
            #expect(text.stdout.contains("URI:spiffe://edge.example/ns/shop/sa/alice"), "\(text.stdout)")
            #expect(text.stdout.contains("TLS Web Client Authentication"))
            let keyCheck = try run("/usr/bin/openssl", ["pkey", "-in", "\(out)/key.pem", "-noout", "-check"])
            #expect(keyCheck.status == 0, "\(keyCheck.stderr)")
            // A certificate from another CA does not verify.
            let stranger = "\(directory.path)/stranger"
            try FileManager.default.createDirectory(atPath: stranger, withIntermediateDirectories: true)
            _ = try run("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=stranger",
                "-keyout", "\(stranger)/key.pem", "-out", "\(stranger)/cert.pem", "-days", "1",
            ])
            #expect(try run("/usr/bin/openssl", ["verify", "-CAfile", exported, "\(stranger)/cert.pem"]).status != 0)

            // Bad input and no token.
            let bad = daemon.api("POST", "/api/v1/certificates", body: #"{"identity":"Not_A_Name"}"#)
            #expect(bad.status == 400 && bad.text.contains("identity"), "\(bad.text)")
            let ttl = daemon.api("POST", "/api/v1/certificates", body: #"{"identity":"bob","ttl":"10y"}"#)
            #expect(ttl.status == 400 && ttl.text.contains("ttl"), "\(ttl.text)")
            #expect(daemon.api("POST", "/api/v1/certificates", body: #"{"identity":"bob"}"#, token: "").status == 401)

            // The CA survives a restart; another trust domain is refused with a clear message.
            let root = try String(contentsOfFile: exported, encoding: .utf8)
            #expect(daemon.stop() == 0)
            try daemon.start()
            #expect(try daemon.cli("cert", "ca").stdout == root)
            #expect(daemon.stop() == 0)
            let other = Daemon(dataDirectory: directory.path, extraArguments: ["--trust-domain", "other.example"])
            #expect(throws: (any Error).self) { try other.start(timeout: .seconds(5)) }
            #expect(other.log().contains("trust domain edge.example"), "\(other.log())")
        }
    }
}
}
