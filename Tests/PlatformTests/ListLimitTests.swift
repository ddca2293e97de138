import Hummingbird
@testable import Platform
import Testing

@Suite struct ListLimitTests {
    @Test func theLimitDefaultsAndIsCapped() throws {
        #expect(try listLimit(nil, max: 1_000) == 100)
        #expect(try listLimit("7", max: 1_000) == 7)
        #expect(try listLimit("1000000", max: 1_000) == 1_000)
    }

    @Test(arguments: ["-1", "0", "ten", ""])
    func aLimitThatIsNotAPositiveWholeNumberIsRefused(_ text: String) {
        #expect(throws: APIError.self) { try listLimit(text, max: 1_000) }
    }
}
