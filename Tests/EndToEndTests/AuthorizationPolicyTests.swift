import Foundation
import TestSupport
import Testing

/// Peer-authentication modes per namespace and service, authorization policies (ALLOW, DENY,
/// dry run, the root namespace) and SNI certificates, with curl and openssl against the real
/// daemon.
extension EndToEnd.MutualTLSTests {
    /// One request over TLS (or plaintext with `tls: false`); returns curl's exit status, the
    /// HTTP status, the echoed request headers and the body.
    func request(
        _ setup: Setup, tls: Bool = true, certificate: String? = nil, service: String = "who", namespace: String = "default",
        path: String = "/", method: String = "GET", ca: String? = nil
    ) throws -> (exit: Int32, status: Int, headers: [String: String], body: String) {
        let host = "\(service).\(namespace).localhost"
        let port = tls ? setup.daemon.tlsPort : setup.daemon.gatewayPort
        var arguments = ["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--resolve", "\(host):\(port):127.0.0.1"]
        if tls { arguments += ["--cacert", ca ?? setup.ca] }
        if let certificate { arguments += ["--cert", "\(certificate)/cert.pem", "--key", "\(certificate)/key.pem"] }
        arguments.append("\(tls ? "https" : "http")://\(host):\(port)\(path)")
        let result = try run("/usr/bin/curl", arguments)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let body = lines.dropLast().joined(separator: "\n")
        let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        let echoed = (json?["headers"] as? [String: String]) ?? [:]
        return (result.status, Int(lines.last ?? "") ?? 0, Dictionary(uniqueKeysWithValues: echoed.map { ($0.key.lowercased(), $0.value) }), body)
    }

    @Test func peerAuthenticationPerNamespaceAndService() async throws {
        try await onThread {
            let setup = try setUp("outpost-peerauth")
            defer { setup.daemon.stop(); setup.directory.remove() }
            let daemon = setup.daemon
            #expect(try daemon.cli("service", "create", "open", "--namespace", "public", "--command", Binaries.echo).status == 0)
            #expect(eventually(timeout: .seconds(20)) { daemon.gateway("open", namespace: "public").status == 200 })

            // Platform STRICT, namespace `public` PERMISSIVE: the most specific scope wins.
            #expect(try daemon.cli("security", "mtls", "--mode", "STRICT").status == 0)
            #expect(try daemon.cli("security", "mtls", "--mode", "PERMISSIVE", "--namespace", "public").status == 0)
            #expect(daemon.gateway("open", namespace: "public").status == 200, "plaintext to a PERMISSIVE namespace")
            #expect(try request(setup, service: "open", namespace: "public").status == 200, "TLS without a certificate")
            let plaintext = daemon.gateway("who")
            #expect(plaintext.status == 403 && plaintext.text.contains("STRICT"), "\(plaintext.text)")
            // The handshake no longer demands a certificate (one namespace is PERMISSIVE), so
            // a STRICT service answers a certificate-less TLS request with 403.
            let anonymous = try request(setup)
            #expect(anonymous.exit == 0 && anonymous.status == 403 && anonymous.body.contains("MutualTLSRequired"), "\(anonymous)")
            #expect(try request(setup, certificate: setup.alice).status == 200)
            let modes = try daemon.cli("security", "mtls").stdout
            #expect(modes.contains("peer authentication: STRICT") && modes.contains("namespace public: PERMISSIVE"), "\(modes)")

            // Service `who` DISABLE: plaintext works and the client certificate is not used.
            #expect(try daemon.cli("security", "mtls", "--mode", "DISABLE", "--service", "who").status == 0)
            #expect(daemon.gateway("who").status == 200)
            let disabled = try request(setup, certificate: setup.alice)
            #expect(disabled.status == 200 && disabled.headers["x-forwarded-client-cert"] == nil, "\(disabled.headers)")
            // UNSET falls back to the platform's STRICT.
            #expect(try daemon.cli("security", "mtls", "--mode", "UNSET", "--service", "who").status == 0)
            #expect(daemon.gateway("who").status == 403)

            // The scopes survive a restart.
            #expect(daemon.stop() == 0)
            try daemon.start()
            #expect(daemon.gateway("who").status == 403)
            #expect(eventually(timeout: .seconds(20)) { daemon.gateway("open", namespace: "public").status == 200 })

            // Bad input names the field.
            let bad = try daemon.cli("security", "mtls", "--mode", "SOMETIMES", "--namespace", "public")
            #expect(bad.status != 0 && bad.stderr.contains("STRICT, PERMISSIVE, DISABLE or UNSET"), "\(bad.stderr)")
            let selector = daemon.api("POST", "/api/v1/namespaces/public/peerauthentications", body: #"{"metadata":{"name":"x"},"spec":{"selector":{"matchLabels":{"app":"x"}},"mtls":{"mode":"STRICT"}}}"#)
            #expect(selector.status == 400 && selector.text.contains("spec.selector.matchLabels"), "\(selector.text)")
        }
    }

    @Test func authorizationPoliciesAllowDenyAndDryRun() async throws {
        try await onThread {
            let setup = try setUp("outpost-authz")
            defer { setup.daemon.stop(); setup.directory.remove() }
            let daemon = setup.daemon
            let bob = "\(setup.directory.path)/bob"
            #expect(try daemon.cli("cert", "issue", "--identity", "bob", "--out", bob).status == 0)
            #expect(try daemon.cli("service", "create", "other", "--command", Binaries.echo).status == 0)
            #expect(eventually(timeout: .seconds(20)) { daemon.gateway("other").status == 200 })

            // ALLOW for one principal: alice in, bob and anonymous callers out, with the reason.
            #expect(try daemon.cli(
                "security", "authz", "set", "only-alice", "--service", "who", "--principal", "outpost.local/ns/default/sa/alice").status == 0)
            #expect(try request(setup, certificate: setup.alice).status == 200)
            let denied = try request(setup, certificate: bob)
            #expect(denied.status == 403 && denied.body.contains("AccessDenied") && denied.body.contains("default/only-alice"), "\(denied.body)")
            #expect(try request(setup).status == 403)
            #expect(daemon.gateway("who").status == 403)
            // The policy selects `who` only.
            #expect(daemon.gateway("other").status == 200)

            // DENY wins over ALLOW.
            #expect(try daemon.cli(
                "security", "authz", "set", "no-admin", "--action", "DENY", "--principal", "outpost.local/ns/default/sa/alice",
                "--path", "/admin*").status == 0)
            let admin = try request(setup, certificate: setup.alice, path: "/admin/users")
            #expect(admin.status == 403 && admin.body.contains("denied by DENY policy default/no-admin"), "\(admin.body)")
            #expect(try request(setup, certificate: setup.alice, path: "/public").status == 200)
            // Dot segments do not get around a path rule.
            #expect(try request(setup, certificate: setup.alice, path: "/x/../admin/users").status == 403)

            // Methods and IP blocks (from a JSON file), and header conditions.
            let file = "\(setup.directory.path)/deny-delete.json"
            try #"{"action":"DENY","rules":[{"from":[{"source":{"ipBlocks":["127.0.0.0/8"]}}],"to":[{"operation":{"methods":["DELETE"]}}]}]}"#
                .write(toFile: file, atomically: true, encoding: .utf8)
            #expect(try daemon.cli("security", "authz", "set", "deny-delete", "-f", file).status == 0)
            #expect(try request(setup, certificate: setup.alice, method: "DELETE").status == 403)
            #expect(daemon.gateway("other").status == 200)

            // Dry run: logged, not enforced.
            #expect(try daemon.cli("security", "authz", "set", "dry", "--action", "DENY", "--path", "/dry", "--dry-run").status == 0)
            #expect(try request(setup, certificate: setup.alice, path: "/dry").status == 200)
            #expect(eventually(timeout: .seconds(5)) { daemon.log().contains("dry-run: DENY policy default/dry would deny") })

            // The root namespace's policies apply everywhere.
            #expect(try daemon.cli("security", "authz", "set", "everywhere", "-n", "outpost-system", "--action", "DENY", "--path", "/blocked").status == 0)
            let blocked = daemon.gateway("other", path: "/blocked")
            #expect(blocked.status == 403 && blocked.text.contains("outpost-system/everywhere"), "\(blocked.text)")

            // Listing, and bad policies rejected with the field to fix.
            let list = try daemon.cli("security", "authz", "list").stdout
            #expect(list.contains("only-alice") && list.contains("no-admin") && list.contains("DENY"), "\(list)")
            let custom = daemon.api("POST", "/api/v1/namespaces/default/authorizationpolicies", body: #"{"metadata":{"name":"c"},"spec":{"action":"CUSTOM"}}"#)
            #expect(custom.status == 400 && custom.text.contains("spec.action"), "\(custom.text)")
            let block = daemon.api("POST", "/api/v1/namespaces/default/authorizationpolicies", body: #"{"metadata":{"name":"b"},"spec":{"rules":[{"from":[{"source":{"ipBlocks":["10.0.0.0/33"]}}]}]}}"#)
            #expect(block.status == 400 && block.text.contains("spec.rules[0].from[0].source.ipBlocks[0]"), "\(block.text)")
            let key = daemon.api("POST", "/api/v1/namespaces/default/authorizationpolicies", body: #"{"metadata":{"name":"k"},"spec":{"rules":[{"when":[{"key":"request.auth.claims[iss]","values":["x"]}]}]}}"#)
            #expect(key.status == 400 && key.text.contains("spec.rules[0].when[0].key"), "\(key.text)")

            // Deleting the ALLOW policy lets bob in again; policies survive a restart.
            #expect(daemon.stop() == 0)
            try daemon.start()
            #expect(try request(setup, certificate: bob).status == 403)
            #expect(try daemon.cli("security", "authz", "delete", "only-alice").status == 0)
            #expect(try request(setup, certificate: bob).status == 200)
        }
    }

    @Test func sniSelectsAnImportedCertificate() async throws {
        try await onThread {
            let setup = try setUp("outpost-sni")
            defer { setup.daemon.stop(); setup.directory.remove() }
            let daemon = setup.daemon
            let site = "\(setup.directory.path)/site"
            try FileManager.default.createDirectory(atPath: site, withIntermediateDirectories: true)
            _ = try run("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=shop.example.test",
                "-addext", "subjectAltName=DNS:shop.example.test,DNS:*.shop.example.test",
                "-keyout", "\(site)/key.pem", "-out", "\(site)/cert.pem", "-days", "2",
            ])
            // A key that does not belong to the certificate is refused.
            _ = try run("/usr/bin/openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "\(site)/other.pem"])
            let mismatch = try daemon.cli("cert", "import", "shop", "--cert", "\(site)/cert.pem", "--key", "\(site)/other.pem")
            #expect(mismatch.status != 0 && mismatch.stderr.contains("does not belong"), "\(mismatch.stderr)")
            #expect(try daemon.cli("cert", "import", "shop", "--cert", "\(site)/cert.pem", "--key", "\(site)/key.pem").status == 0)
            #expect(try daemon.cli("cert", "list").stdout.contains("*.shop.example.test"))

            func subject(_ serverName: String) throws -> String {
                try run("/bin/sh", ["-c", "echo | /usr/bin/openssl s_client -connect 127.0.0.1:\(daemon.tlsPort) -servername \(serverName) 2>/dev/null | /usr/bin/openssl x509 -noout -subject"]).stdout
            }
            #expect(try subject("shop.example.test").contains("shop.example.test"))
            #expect(try subject("www.shop.example.test").contains("shop.example.test"))
            #expect(try subject("who.default.localhost").contains("Outpost"))
            // curl trusts the imported certificate for its name; the request routes by Host.
            let shop = try run("/usr/bin/curl", [
                "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", "\(site)/cert.pem",
                "--resolve", "shop.example.test:\(daemon.tlsPort):127.0.0.1", "-H", "Host: who.default.localhost",
                "https://shop.example.test:\(daemon.tlsPort)/",
            ])
            #expect(shop.status == 0 && shop.stdout == "200", "\(shop.stdout) \(shop.stderr)")

            // Imported certificates survive a restart; deleting one restores the default.
            #expect(daemon.stop() == 0)
            try daemon.start()
            #expect(try subject("shop.example.test").contains("shop.example.test"))
            #expect(try daemon.cli("cert", "delete", "shop").status == 0)
            #expect(try subject("shop.example.test").contains("Outpost"))
        }
    }

    @Test func workloadCertificatesRenewWithoutRestartAndIdentifyCallers() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-svid")
            let daemon = Daemon(dataDirectory: directory.path, extraArguments: ["--workload-certificate-ttl", "12s"])
            try daemon.start()
            defer { daemon.stop(); directory.remove() }
            #expect(try daemon.cli("service", "create", "who", "--command", Binaries.echo).status == 0)
            #expect(try daemon.cli("service", "create", "caller", "--command", Binaries.echo).status == 0)
            #expect(eventually(timeout: .seconds(20)) { daemon.gateway("who").status == 200 && daemon.gateway("caller").status == 200 })
            let setup = Setup(daemon: daemon, directory: directory)
            #expect(try daemon.cli("cert", "issue", "--identity", "alice", "--out", setup.alice).status == 0)

            // The worker's environment names its certificate files.
            let env = try #require(daemon.gateway("caller").json?["env"] as? [String: Any])
            let pid = daemon.gateway("caller").json?["pid"] as? Int
            #expect(env["OUTPOST_SPIFFE_ID"] as? String == "spiffe://outpost.local/ns/default/sa/caller")
            let certificate = try #require(env["OUTPOST_SVID_CERT"] as? String)
            let folder = (certificate as NSString).deletingLastPathComponent
            let keyMode = try FileManager.default.attributesOfItem(atPath: "\(folder)/key.pem")[.posixPermissions] as? Int
            #expect(keyMode == 0o600)
            let verified = try run("/usr/bin/openssl", ["verify", "-CAfile", "\(folder)/bundle.pem", certificate])
            #expect(verified.status == 0 && verified.stdout.contains("OK"), "\(verified.stdout) \(verified.stderr)")
            let names = try run("/usr/bin/openssl", ["x509", "-in", certificate, "-noout", "-ext", "subjectAltName"]).stdout
            #expect(names.contains("URI:spiffe://outpost.local/ns/default/sa/caller"), "\(names)")

            // Service to service: the caller's SVID identifies it at the gateway.
            let call = try request(setup, certificate: folder)
            #expect(call.status == 200 && call.headers["x-forwarded-client-cert"]?.hasSuffix("URI=spiffe://outpost.local/ns/default/sa/caller") == true, "\(call.headers)")

            // Renewed at about half of 12 s, in place: same worker, new certificate.
            func serial() throws -> String { try run("/usr/bin/openssl", ["x509", "-in", certificate, "-noout", "-serial"]).stdout }
            let first = try serial()
            #expect(eventually(timeout: .seconds(15)) { (try? serial()) != first })
            #expect(daemon.gateway("caller").json?["pid"] as? Int == pid, "the worker was not restarted")
            #expect(try run("/usr/bin/openssl", ["verify", "-CAfile", "\(folder)/bundle.pem", certificate]).status == 0)
            #expect(try request(setup, certificate: folder).status == 200)

            // A deleted service's files go with it.
            let serviceFolder = (folder as NSString).deletingLastPathComponent
            #expect(try daemon.cli("service", "delete", "caller").status == 0)
            #expect(eventually(timeout: .seconds(10)) { !FileManager.default.fileExists(atPath: serviceFolder) })
        }
    }

    @Test func rootRotationInThreeStepsWithoutFailedRequests() async throws {
        try await onThread {
            let setup = try setUp("outpost-root")
            defer { setup.daemon.stop(); setup.directory.remove() }
            let daemon = setup.daemon
            #expect(try daemon.cli("security", "mtls", "--mode", "STRICT").status == 0)
            func certificates(_ pem: String) -> Int { pem.components(separatedBy: "BEGIN CERTIFICATE").count - 1 }

            // prepare: the next root is trusted; the signing root does not change yet.
            let prepared = try daemon.cli("cert", "rotate-root", "prepare")
            #expect(prepared.status == 0 && prepared.stdout.contains("next"), "\(prepared.stdout) \(prepared.stderr)")
            let both = "\(setup.directory.path)/both.pem"
            #expect(try daemon.cli("cert", "ca", "--out", both).status == 0)
            #expect(certificates(try String(contentsOfFile: both, encoding: .utf8)) == 2)
            #expect(try request(setup, certificate: setup.alice).status == 200, "the old bundle still verifies the gateway")

            // activate under load: clients with the new bundle and an old-root certificate see no failure.
            let text = try tlsLoad(setup, ca: both, certificate: setup.alice) {
                usleep(1_500_000)
                let activated = try daemon.cli("cert", "rotate-root", "activate")
                #expect(activated.status == 0 && activated.stdout.contains("previous"), "\(activated.stdout) \(activated.stderr)")
            }
            #expect(text.contains("failed=0"), "\(text)")
            #expect(try request(setup, certificate: setup.alice, ca: both).status == 200)
            #expect(try request(setup, certificate: setup.alice).exit != 0, "the gateway's certificate now comes from the new root")
            let bob = "\(setup.directory.path)/bob"
            #expect(try daemon.cli("cert", "issue", "--identity", "bob", "--out", bob).status == 0)
            #expect(try run("/usr/bin/openssl", ["verify", "-CAfile", both, "\(bob)/cert.pem"]).status == 0)
            #expect(try run("/usr/bin/openssl", ["verify", "-CAfile", setup.ca, "\(bob)/cert.pem"]).status != 0)
            #expect(try request(setup, certificate: bob, ca: both).status == 200)
            let again = try daemon.cli("cert", "rotate-root", "activate")
            #expect(again.status != 0 && again.stderr.contains("no next root"), "\(again.stderr)")

            // retire: certificates of the old root are refused; the new root's work.
            #expect(try daemon.cli("cert", "rotate-root", "retire").status == 0)
            #expect(try request(setup, certificate: setup.alice, ca: both).status != 200)
            #expect(try request(setup, certificate: bob, ca: both).status == 200)
            #expect(daemon.stop() == 0)
            try daemon.start()
            #expect(eventually(timeout: .seconds(20)) { (try? request(setup, certificate: bob, ca: "\(bob)/ca.pem").status) == 200 })
            #expect(certificates(try daemon.cli("cert", "ca").stdout) == 1)
        }
    }

    @Test func adminAPIOverHTTPSWithClientCertificates() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-admin-tls")
            let daemon = Daemon(dataDirectory: directory.path, extraArguments: ["--admin-tls"])
            try daemon.start()
            defer { daemon.stop(); directory.remove() }
            // The token still works over HTTPS.
            #expect(try daemon.cli("service", "list").status == 0)
            let ops = "\(directory.path)/ops"
            let alice = "\(directory.path)/alice"
            #expect(try daemon.cli("cert", "issue", "--identity", "ops", "--namespace", "outpost-system", "--out", ops).status == 0)
            #expect(try daemon.cli("cert", "issue", "--identity", "alice", "--out", alice).status == 0)

            // Without a token (an empty data folder), a certificate of outpost-system is enough.
            let empty = "\(directory.path)/empty"
            try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
            func cli(_ certificate: String?, _ arguments: String...) throws -> CommandResult {
                var environment = ["OUTPOST_ADMIN_URL": daemon.adminURL, "OUTPOST_DATA_DIR": empty, "OUTPOST_ADMIN_CACERT": daemon.caRootPath]
                if let certificate {
                    environment["OUTPOST_ADMIN_CERT"] = "\(certificate)/cert.pem"
                    environment["OUTPOST_ADMIN_KEY"] = "\(certificate)/key.pem"
                }
                return try run(Binaries.outpost, arguments, environment: environment)
            }
            let created = try cli(ops, "service", "create", "hello", "--command", Binaries.echo)
            #expect(created.status == 0, "\(created.stderr)")
            let refused = try cli(alice, "service", "delete", "hello")
            #expect(refused.status != 0 && refused.stderr.contains("may not administer"), "\(refused.stderr)")
            let anonymous = try cli(nil, "service", "delete", "hello")
            #expect(anonymous.status != 0 && anonymous.stderr.contains("missing bearer token"), "\(anonymous.stderr)")
            let plain = try run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", daemon.caRootPath, "-X", "DELETE", "\(daemon.adminURL)/api/v1/namespaces/default/services/hello"])
            #expect(plain.stdout == "401")

            // The audit log names the certificate; workloads may not use the platform's namespace.
            let audit = try run("/usr/bin/curl", ["-s", "--cacert", daemon.caRootPath, "-H", "Authorization: Bearer \(daemon.token)", "\(daemon.adminURL)/api/v1/audit"]).stdout
            #expect(audit.contains("cert:spiffe://outpost.local/ns/outpost-system/sa/ops"), "\(audit.prefix(600))")
            let reserved = try daemon.cli("service", "create", "sneaky", "--namespace", "outpost-system", "--command", Binaries.echo)
            #expect(reserved.status != 0 && reserved.stderr.contains("reserved"), "\(reserved.stderr)")

            // A non-loopback admin address needs --admin-tls.
            let open = try run(Binaries.outpost, ["serve", "--data-dir", "\(directory.path)/other", "--admin-address", "0.0.0.0:1"])
            #expect(open.status != 0 && open.stderr.contains("--admin-tls"), "\(open.stderr)")
        }
    }
}
