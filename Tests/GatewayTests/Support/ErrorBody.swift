import Foundation
import NIOHTTP1

/// The gateway's JSON error body.
struct ErrorBody: Decodable, Equatable {
    struct Detail: Decodable, Equatable {
        var code: String
        var message: String
    }

    var error: Detail

    init?(_ response: TestResponse) {
        guard response.headers["content-type"].first == "application/json",
            let decoded = try? JSONDecoder().decode(ErrorBody.self, from: Data(response.text.utf8))
        else { return nil }
        self = decoded
    }
}
