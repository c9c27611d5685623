import Foundation
import XCTest
@testable import Porta

/// Journey 8: Ada invites a cleaner for 09-12; the cleaner's phone is a second client
/// with its own data directory and secure store, never signed in. The simulated lock's clock
/// is set by hand to inside and outside the schedule.
final class InvitationTests: XCTestCase {
    var server: TestServer!

    override func setUpWithError() throws { server = try TestServer() }
    override func tearDown() { server.stop() }

    final class NoProgress: UnlockListener, @unchecked Sendable {
        func onProgress(progress: UnlockProgress) throws {}
    }

    /// The next `hour`:00 in the site's time (UTC + `offsetMinutes`) after `after`.
    func next(at hour: Int, offsetMinutes: Int, after: Int64) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: offsetMinutes * 60)!
        let start = Date(timeIntervalSince1970: TimeInterval(after))
        let date = calendar.nextDate(
            after: start, matching: DateComponents(hour: hour, minute: 0, second: 0), matchingPolicy: .strict)!
        return Int64(date.timeIntervalSince1970)
    }

    func testGuestWithoutAnAccountOpensTheInvitedDoorOnlyOnScheduleUntilRevoked() async throws {
        let locks = server.locks
        let transport = simulatedTransport(locks: locks)
        let ada = try makeClient(server.url, InMemorySecureStore(), lockTransport: transport)
        try await ada.signInWithOutbox(server, "ada@demo.porta.app")
        _ = try await ada.doors()
        let now = Int64(Date().timeIntervalSince1970)

        // Ada invites a cleaner: the main entrance, 09:00-12:00 every day, for the next 8 days. (Every
        // day, not one weekday: the next slot is then within a day, never past a change of
        // daylight-saving time, where the server starts a new credential.)
        let created = try await ada.createInvitation(
            invitation: NewInvitation(
                doors: [1], notBefore: now, notAfter: now + 8 * 24 * 3600,
                schedule: [ScheduleWindow(days: 0x7f, startMinute: 9 * 60, endMinute: 12 * 60)],
                uses: 2, label: "cleaner"))
        XCTAssertTrue(created.link.contains("/i/"))
        let offset = Int(created.invitation.schedule!.utcOffsetMinutes)

        // The cleaner's phone: its own data directory and secure store, no account.
        let guest = try makeClient(server.url, InMemorySecureStore(), lockTransport: transport)
        let preview = try await guest.invitationPreview(linkOrCode: created.code)
        XCTAssertEqual(preview.doors.map(\.name), ["Main entrance"])
        let accepted = try await guest.acceptInvitation(linkOrCode: created.link)
        XCTAssertTrue(guest.isGuest())
        let again = try await guest.acceptInvitation(linkOrCode: created.code.lowercased())
        XCTAssertEqual(again.guestId, accepted.guestId, "accepting again")
        let doors = try guest.cachedDoors()
        XCTAssertEqual(doors.map(\.doorId), [1])
        XCTAssertEqual(doors[0].access.first?.schedule?.windows.first?.days, 0x7f)
        await assertThrows({ _ = try await guest.profile() }) { $0 == .GuestAccount }

        // 10:00 at the site: it opens. 13:00 the same day: OutsideSchedule. Another door: NoAccess.
        let inside = next(at: 10, offsetMinutes: offset, after: now + 60)
        locks[0].setClock(unixSeconds: UInt64(inside))
        try await guest.unlock(doorId: 1, listener: NoProgress())
        XCTAssertEqual(locks[0].openedCount(), 1)
        locks[0].setClock(unixSeconds: UInt64(inside + 3 * 3600))
        await assertThrows({ try await guest.unlock(doorId: 1, listener: NoProgress()) }) {
            $0 == .OutsideSchedule
        }
        await assertThrows({ try await guest.unlock(doorId: 2, listener: NoProgress()) }) {
            $0 == .NoAccess
        }
        XCTAssertEqual(locks[0].openedCount(), 1)
        // The guest's records reach the server while it still may (the explicit upload waits
        // for the one each unlock starts); from here on its phone is offline: an upload after
        // the revocation would sign it out and wipe its credential.
        _ = try await guest.uploadAccessEvents()
        XCTAssertEqual(try guest.pendingAccessEvents(), 0)

        // Ada sees the guest by label, revokes the invitation, and her next unlock carries
        // the new revocation list to the lock.
        let sent = try await ada.invitations()
        XCTAssertEqual(sent.invitations.first { $0.id == created.invitation.id }?.usesLeft, 1)
        XCTAssertEqual(sent.guests.map(\.label), ["cleaner"])
        XCTAssertEqual(sent.guests.first?.hasAccount, false)
        try await ada.revokeInvitation(invitationId: created.invitation.id)
        _ = try await ada.doors()
        locks[0].setClock(unixSeconds: UInt64(now))
        try await ada.unlock(doorId: 1, listener: NoProgress())
        XCTAssertEqual(locks[0].openedCount(), 2)
        locks[0].setClock(unixSeconds: UInt64(inside))
        await assertThrows({ try await guest.unlock(doorId: 1, listener: NoProgress()) }) {
            $0 == .Revoked
        }
        XCTAssertEqual(locks[0].openedCount(), 2)
        let latecomer = try makeClient(server.url, InMemorySecureStore())
        await assertThrows({ _ = try await latecomer.acceptInvitation(linkOrCode: created.code) }) { $0 == .Revoked }
    }

    func testBeforeItsWindowAGuestHearsNotYetValidAndAUsedUpInvitationIsUsedUp() async throws {
        let locks = server.locks
        let transport = simulatedTransport(locks: locks)
        let ada = try makeClient(server.url, InMemorySecureStore(), lockTransport: transport)
        try await ada.signInWithOutbox(server, "ada@demo.porta.app")
        let now = Int64(Date().timeIntervalSince1970)
        // One use, from two hours from now.
        let later = try await ada.createInvitation(
            invitation: NewInvitation(doors: [1], notBefore: now + 2 * 3600, notAfter: now + 24 * 3600))
        let guest = try makeClient(server.url, InMemorySecureStore(), lockTransport: transport)
        _ = try await guest.acceptInvitation(linkOrCode: later.code)
        await assertThrows({ try await guest.unlock(doorId: 1, listener: NoProgress()) }) {
            $0 == .NotYetValid
        }
        XCTAssertEqual(locks[0].openedCount(), 0)
        let latecomer = try makeClient(server.url, InMemorySecureStore())
        await assertThrows({ _ = try await latecomer.acceptInvitation(linkOrCode: later.link) }) { $0 == .UsedUp }
    }

    func testMistypedCodeIsInvalidCodeBeforeAnyRequest() async throws {
        let guest = try makeClient(server.url, InMemorySecureStore())
        await assertThrows({ _ = try await guest.acceptInvitation(linkOrCode: "not-a-code") }) { $0 == .InvalidCode }
        XCTAssertFalse(guest.isSignedIn())
    }
}
