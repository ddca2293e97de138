import ArgumentParser
import Foundation
import Glibc
import NIOHTTP1

/// `outpost cert ...`: certificates from the daemon's built-in CA.
struct CertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert", abstract: "Issue certificates from the built-in CA, export its trust bundle, import certificates for SNI.",
        subcommands: [Issue.self, CA.self, RotateRoot.self, Import.self, List.self, Delete.self])
}

extension CertCommand {
    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a client certificate for a caller outside the platform.",
            discussion: "Writes DIR/cert.pem, DIR/key.pem (mode 0600) and DIR/ca.pem (the trust bundle). The identity is spiffe://<trust-domain>/ns/<namespace>/sa/<identity>.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The caller's name (DNS-1035).") var identity: String
        @Option(name: .shortAndLong, help: "Namespace of the identity.") var namespace = "default"
        @Option(help: "Folder to write cert.pem, key.pem and ca.pem to (created if missing).") var out: String
        @Option(help: "Lifetime, e.g. 24h (default) or 30m.") var ttl: String?
        @Option(name: .customLong("dns-name"), help: "A DNS name for the SAN too (repeat for more; for server certificates).")
        var dnsNames: [String] = []

        func run() async throws {
            let request = IssueCertificateRequest(
                identity: identity, namespace: namespace, dnsNames: dnsNames.isEmpty ? nil : dnsNames, ttl: ttl)
            let data = try await global.client().call(.POST, "/api/v1/certificates", body: try APIJSON.encoder().encode(request))
            let issued = try APIJSON.decoder().decode(IssuedCertificateDTO.self, from: data)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try write("\(out)/key.pem", issued.privateKey, mode: 0o600)
            try write("\(out)/cert.pem", issued.certificate, mode: 0o644)
            try write("\(out)/ca.pem", issued.trustBundle, mode: 0o644)
            if global.output == .json { return printRaw(data) }
            printFields([
                ("Identity", issued.spiffeID), ("Not after", issued.notAfter.formatted(Date.ISO8601FormatStyle())),
                ("Files", "\(out)/cert.pem, \(out)/key.pem, \(out)/ca.pem"),
            ])
        }
    }

    struct CA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the CA's trust bundle (PEM), or write it to a file.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "File to write the bundle to.") var out: String?

        func run() async throws {
            let data = try await global.client().call(.GET, "/api/v1/certificates/ca")
            let bundle = try APIJSON.decoder().decode(TrustBundleDTO.self, from: data)
            if let out { return try write(out, bundle.trustBundle, mode: 0o644) }
            if global.output == .json { return printRaw(data) }
            print(bundle.trustBundle, terminator: "")
        }
    }
}

extension CertCommand {
    struct RotateRoot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-root", abstract: "Rotate the CA's root without downtime, one step at a time.",
            discussion: """
                prepare: create the next root and trust it beside the current one (certificates are still signed \
                by the current root); hand the new bundle (outpost cert ca) to outside clients. activate: sign \
                with the next root from now on; the gateway's certificate and workload certificates are \
                reissued, and certificates of the old root stay trusted. retire: stop trusting the old root, \
                once the certificates it signed have expired.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "prepare, activate or retire.") var step: String

        func run() async throws {
            let data = try await global.client().call(
                .POST, "/api/v1/certificates/ca/rotate", body: try APIJSON.encoder().encode(["step": step]))
            if global.output == .json { return printRaw(data) }
            let bundle = try APIJSON.decoder().decode(TrustBundleDTO.self, from: data)
            printTable(["ROLE", "SERIAL", "NOT AFTER"], (bundle.roots ?? []).map {
                [$0.role, $0.serialNumber, $0.notAfter.formatted(Date.ISO8601FormatStyle())]
            })
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a server certificate for the TLS listener, chosen by SNI.",
            discussion: "Clients that ask for one of its hosts (default: the certificate's DNS names) get it; every other name keeps the built-in CA's certificate. Importing under an existing name replaces it. Open connections keep their certificate.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "A name for the certificate (DNS-1035).") var name: String
        @Option(help: "PEM file: the certificate, then its intermediates.") var cert: String
        @Option(help: "PEM file: the private key.") var key: String
        @Option(name: .customLong("host"), help: "A host it answers, exact or *.domain (repeat for more; default: its DNS names).") var hosts: [String] = []

        func run() async throws {
            guard let certificate = try? String(contentsOfFile: cert, encoding: .utf8) else { throw CLIError("cannot read \(cert)") }
            guard let privateKey = try? String(contentsOfFile: key, encoding: .utf8) else { throw CLIError("cannot read \(key)") }
            let request = ImportCertificateRequest(certificate: certificate, privateKey: privateKey, hosts: hosts.isEmpty ? nil : hosts)
            let data = try await global.client().call(
                .PUT, "/api/v1/security/certificates/\(name)", body: try APIJSON.encoder().encode(request))
            if global.output == .json { return printRaw(data) }
            let imported = try APIJSON.decoder().decode(ImportedCertificateDTO.self, from: data)
            printFields([
                ("Name", imported.name), ("Hosts", imported.hosts.joined(separator: ", ")),
                ("Not after", imported.notAfter.map { $0.formatted(Date.ISO8601FormatStyle()) } ?? "?"),
            ])
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the imported certificates.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let data = try await global.client().call(.GET, "/api/v1/security/certificates")
            if global.output == .json { return printRaw(data) }
            let list = try APIJSON.decoder().decode(ListDTO<ImportedCertificateDTO>.self, from: data)
            printTable(["NAME", "HOSTS", "NOT AFTER"], list.items.map {
                [$0.name, $0.hosts.joined(separator: ","), $0.notAfter.map { $0.formatted(Date.ISO8601FormatStyle()) } ?? "?"]
            })
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an imported certificate (its hosts get the default certificate again).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Name of the certificate.") var name: String

        func run() async throws {
            _ = try await global.client().call(.DELETE, "/api/v1/security/certificates/\(name)")
            print("certificate \(name) deleted")
        }
    }
}

/// Writes `contents` to `path` with `mode`, replacing any file there.
private func write(_ path: String, _ contents: String, mode: mode_t) throws {
    unlink(path)
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else { throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    let bytes = Array(contents.utf8)
    guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
        throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))")
    }
}
