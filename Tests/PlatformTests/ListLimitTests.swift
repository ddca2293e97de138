import Hummingbird
@testable import Platform
import Testing

@Suite struct EventLogListingTests {
    typealias Controller = EventLogController<BasicRequestContext>

    @Test func theLimitDefaultsAndIsCapped() throws {
        #expect(try Controller.limit(nil) == 100)
        #expect(try Controller.limit("7") == 7)
        #expect(try Controller.limit("1000000") == Controller.maxListed)
    }

    @Test(arguments: ["-1", "0", "ten", ""])
    func aLimitThatIsNotAPositiveWholeNumberIsRefused(_ text: String) {
        #expect(throws: APIError.self) { try Controller.limit(text) }
    }
}
