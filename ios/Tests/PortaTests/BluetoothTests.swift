#if os(Linux)
import Foundation
import XCTest
@testable import Porta

/// The library's built-in Bluetooth transport (btleplug over BlueZ) opening doors through the
/// fake BlueZ: a private D-Bus whose locks are real porta-lock state machines provisioned by
/// the real porta-server. Nothing in the library knows it is a test. Linux only: on Apple
/// platforms the transport is CoreBluetooth, which no fake reaches.
final class BluetoothTests: XCTestCase {
    var server: TestServer!

    override func setUpWithError() throws { server = try TestServer() }
    override func tearDown() { server.stop() }

    func testFakeBluezServesTheBuildingsLocksOnAPrivateBus() throws {
        let bluez = try FakeBluez.shared()
        XCTAssertTrue(bluez.address.hasPrefix("unix:path="), bluez.address)
        let locks = try bluez.serve(server, mtu: 185)
        XCTAssertEqual(locks.count, 3)
        XCTAssertEqual(try bluez.opened(locks[0]), 0)
        XCTAssertEqual(try bluez.trace(locks[0]).connects, 0)
    }
}
#endif
