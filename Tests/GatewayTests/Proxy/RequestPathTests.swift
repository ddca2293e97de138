@testable import Gateway
import Testing

/// Istio's BASE path normalization (plus merged slashes), applied before routing and
/// authorization and forwarded to the worker.
@Suite("Request path normalization")
struct RequestPathTests {
    @Test(
        "paths are normalized once; the query stays as sent",
        arguments: [
            ("/%61dmin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E%2e/admin?x=%2e%2e", "/admin?x=%2e%2e"),
            ("/public/.%2E/admin", "/admin"),
            ("/a/./b/../c", "/a/c"),
            ("/a//b///c", "/a/b/c"),
            ("//admin", "/admin"),
            ("/a\\b", "/a/b"),
            ("/../x/", "/x/"),
            ("/..", "/"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/a/..?q=1", "/?q=1"),
            ("/%7Euser/%5Fx%2D%30", "/~user/_x-0"),
            ("/a%2Fb/%2e%2e", "/"),
            ("/a%2Fb/c/%2e%2e", "/a%2Fb/"),
            ("/%252e%252e/admin", "/%252e%252e/admin"),
            ("/a/%2e%2e%2fadmin", "/a/..%2fadmin"),
            // A `%` that starts no escape is encoded, so decoding cannot build one.
            ("/admin/%%32%65%%32%65/x", "/admin/%252e%252e/x"),
            ("/%2%65%2%65/admin", "/%252e%252e/admin"),
            ("/a%2", "/a%252"),
            ("/a%zz?q=%", "/a%25zz?q=%"),
        ])
    func normalizes(_ uri: String, _ expected: String) {
        #expect((RequestPath.normalized(uri) ?? uri) == expected)
        // Idempotent: the forwarded path is what policies judged.
        #expect(RequestPath.normalized(expected) == nil, "\(expected) should already be normal")
    }

    @Test(
        "a normal path is left alone (nil: no new string)",
        arguments: ["/", "/admin", "/a/b/", "/.well-known/x", "/a..b/c.d", "/a%20b%2F", "/x?y=/../z//", "/v1/models/m:predict"])
    func leavesNormalPaths(_ uri: String) {
        #expect(RequestPath.normalized(uri) == nil)
    }

    @Test("targets other than paths are not touched")
    func otherTargets() {
        #expect(RequestPath.normalized("*") == nil)
        #expect(RequestPath.normalized("http://h/../a") == nil)
        #expect(RequestPath.normalized("") == nil)
    }

    @Test("%00 is found in the path, not in the query or fragment")
    func encodedNul() {
        for uri in ["/%00", "/a%00b", "/a/%00?x", "/%2500%00"] { #expect(RequestPath.hasEncodedNul(uri), "\(uri)") }
        for uri in ["/", "/a%0", "/%2500", "/a?x=%00", "/a#%00", "/%0a0", "/%0"] {
            #expect(!RequestPath.hasEncodedNul(uri), "\(uri)")
        }
    }
}
