import ArgumentParser
import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// Options every API-calling command shares.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Admin API URL (default: $OUTPOST_ADMIN_URL, else http://127.0.0.1:8090).")
    var adminURL: String?

    @Option(help: "Admin token (default: $OUTPOST_TOKEN, else <data-dir>/admin.token).")
    var token: String?

    @Option(help: "Data folder to read the admin token from (default: as for `outpost serve`).")
    var dataDir: String?

    @Option(name: .customLong("admin-cacert"), help: "PEM bundle to verify an https:// admin URL with (default: $OUTPOST_ADMIN_CACERT; `outpost cert ca` prints it).")
    var caCertificate: String?

    @Option(name: .customLong("admin-cert"), help: "Client certificate (PEM) for an https:// admin URL; one of namespace outpost-system needs no token (default: $OUTPOST_ADMIN_CERT).")
    var clientCertificate: String?

    @Option(name: .customLong("admin-key"), help: "Its private key (PEM) (default: $OUTPOST_ADMIN_KEY).")
    var clientKey: String?

    @Option(name: .shortAndLong, help: "Output format: table or json.")
    var output: OutputFormat = .table

    func client() throws -> AdminClient {
        let environment = ProcessInfo.processInfo.environment
        var base = adminURL ?? environment["OUTPOST_ADMIN_URL"] ?? "http://127.0.0.1:8090"
        while base.hasSuffix("/") { base.removeLast() }
        guard base.hasPrefix("http://") || base.hasPrefix("https://") else {
            throw CLIError("--admin-url must start with http:// or https://, got \"\(base)\"")
        }
        let certificate = clientCertificate ?? environment["OUTPOST_ADMIN_CERT"]
        let key = clientKey ?? environment["OUTPOST_ADMIN_KEY"]
        let roots = caCertificate ?? environment["OUTPOST_ADMIN_CACERT"]
        guard (certificate == nil) == (key == nil) else { throw CLIError("--admin-cert and --admin-key go together") }
        var resolved = token ?? environment["OUTPOST_TOKEN"]
        if resolved == nil && certificate == nil {
            let path = DataDirectory.resolve(dataDir).tokenPath
            resolved = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard base.hasPrefix("https://") || (certificate == nil && roots == nil) else {
            throw CLIError("--admin-cert, --admin-key and --admin-cacert need an https:// admin URL (outpost serve --admin-tls)")
        }
        var http = HTTPClient.shared
        if base.hasPrefix("https://") {
            var tls = TLSConfiguration.makeClientConfiguration()
            do {
                if let roots { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(roots)) }
                if let certificate, let key {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                }
            } catch {
                throw CLIError("cannot read the TLS files: \(error)")
            }
            http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(tlsConfiguration: tls))
            keptClients.withLock { $0.append(http) }
        }
        return AdminClient(baseURL: base, token: resolved, http: http)
    }
}

/// Clients made for https:// admin URLs, kept alive for the process (a client must not be
/// released before it is shut down, and a command's process simply ends).
private let keptClients = Mutex<[HTTPClient]>([])

/// How commands print resources.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

/// A CLI failure, printed as one line (`Error: ...`) with a non-zero exit.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Calls the admin API.
struct AdminClient {
    let baseURL: String
    let token: String?
    /// The shared client, or one with the TLS settings of an https:// admin URL (the process
    /// ends with the command, so it is never shut down).
    var http: HTTPClient = .shared

    /// Sends a request; returns the body of a 2xx answer, throws `CLIError` with the API's
    /// message otherwise.
    func call(_ method: HTTPMethod, _ path: String, body: Data? = nil, contentType: String = "application/json") async throws -> Data {
        let response = try await send(method, path, body: body, contentType: contentType, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let data = Data(bytes.readableBytesView)
        guard (200..<300).contains(Int(response.status.code)) else { throw apiError(status: response.status, body: data) }
        return data
    }

    /// Sends a request and returns the response with its body still streaming.
    func stream(_ path: String) async throws -> HTTPClientResponse {
        let response = try await send(.GET, path, body: nil, contentType: "", timeout: .hours(24 * 365))
        guard (200..<300).contains(Int(response.status.code)) else {
            let bytes = try await response.body.collect(upTo: 1 << 20)
            throw apiError(status: response.status, body: Data(bytes.readableBytesView))
        }
        return response
    }

    private func send(_ method: HTTPMethod, _ path: String, body: Data?, contentType: String, timeout: TimeAmount) async throws -> HTTPClientResponse {
        // The HTTP client retries refused connections until its deadline; find out at once instead.
        if let problem = Self.connectProblem(baseURL) {
            throw CLIError("cannot reach the Outpost daemon at \(baseURL) (\(problem)); is `outpost serve` running? Set --admin-url or OUTPOST_ADMIN_URL")
        }
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            return try await http.execute(request, timeout: timeout)
        } catch {
            throw CLIError("cannot reach the Outpost daemon at \(baseURL) (\(error)); is `outpost serve` running? Set --admin-url or OUTPOST_ADMIN_URL")
        }
    }

    /// Tries a TCP connect to the URL's host and port; returns why it failed, or nil.
    static func connectProblem(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let host = components.host else { return "bad URL" }
        let port = components.port ?? (components.scheme == "https" ? 443 : 80)
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &results) == 0, let first = results else { return "cannot resolve \(host)" }
        defer { freeaddrinfo(results) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 ? nil : String(cString: strerror(errno)).lowercased()
    }

    private func apiError(status: HTTPResponseStatus, body: Data) -> CLIError {
        struct Envelope: Decodable {
            struct Detail: Decodable { var message: String }
            var error: Detail
        }
        if let envelope = try? JSONDecoder().decode(Envelope.self, from: body) {
            let hint = status.code == 401 && token == nil ? " (no token found: pass --token or set OUTPOST_TOKEN)" : ""
            return CLIError("\(envelope.error.message)\(hint)")
        }
        return CLIError("the daemon answered \(status.code) \(status.reasonPhrase)")
    }
}
