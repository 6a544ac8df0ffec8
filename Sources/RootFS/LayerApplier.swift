import Archive
import Foundation
import OCI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The work of applying one layer: the entries in tar order, then each touched directory's
/// final mode, owner and times.
final class LayerApplier {
    /// Bytes moved per read of a file body; the only buffer that grows with nothing.
    static let bufferSize = 1 << 20

    private let root: RootDirectory
    private let options: Unpacker.Options
    /// Whether permissions do not stop us (root). Not the same as preserving ownership.
    private let privileged: Bool
    let buffer: UnsafeMutableRawBufferPointer

    private(set) var entries = 0
    private(set) var skippedCount = 0
    /// The first few skipped names, for the log line.
    private var skippedNames: [String] = []

    /// Resolved paths this layer created or replaced, and all their ancestors. Whiteouts only
    /// remove what lower layers made (image spec, "Whiteouts"), so a whiteout or opaque
    /// marker leaves these alone, wherever in the layer it comes.
    private var upperPaths: Set<String> = [""]
    /// Directories whose mode, owner or times must be set once the layer's entries are in:
    /// those the layer lists (their times would move with every child created), and those
    /// whose contents it changed without listing them (their times are put back).
    private var directories: [String: DirectoryState] = [:]
    /// Paths of device nodes not created, so hardlinks to them can be skipped too.
    private var skippedDevices: Set<String> = []
    private var ownershipWarning: String?
    private var xattrWarning: String?

    private struct DirectoryState {
        var path: RootPath
        var owner: (uid: uid_t, gid: gid_t)?
        var mode: mode_t?
        var times: (access: timespec, modification: timespec)?
    }

    init(root: RootDirectory, options: Unpacker.Options) {
        self.root = root
        self.options = options
        self.privileged = root.privileged
        self.buffer = .allocate(byteCount: LayerApplier.bufferSize, alignment: 16)
        root.onImplicitDirectory = { [unowned self] parent, parentPath, name in
            self.noteChange(in: parent, at: parentPath)
            self.upperPaths.insert(parentPath.appending(name).description)
        }
    }

    func release() {
        buffer.deallocate()
        root.onImplicitDirectory = { _, _, _ in }
    }

    // MARK: Entries

    func apply(_ reader: TarReader) throws(UnpackError) {
        var previous: String?
        while true {
            let next: TarHeader?
            do {
                next = try reader.next()
            } catch {
                let after = previous.map { " after entry \(quoted($0))" } ?? ""
                throw UnpackError(.unreadableLayer, "cannot read the layer\(after): \(error)")
            }
            guard let header = next else { return }
            entries += 1
            previous = header.name
            do {
                try apply(header, reader)
            } catch var error {
                if error.entry == nil { error.entry = header.name }
                throw error
            }
        }
    }

    private func apply(_ header: TarHeader, _ reader: TarReader) throws(UnpackError) {
        let path = try RootPath.parse(header.name)
        if let name = path.name, name.hasPrefix(".wh.") {
            try whiteout(path, name)
            return
        }
        if path.isRoot {
            guard header.kind == .directory else {
                // umoci's CVE-2021-29136: a link named "." replaced the root, and later
                // entries were written wherever it pointed.
                throw UnpackError(
                    .unsafePath,
                    "refused: an entry for the root directory itself must be a directory, not \(describe(header.kind))")
            }
            // The root's mode, owner and times are the caller's (Concourse's volume), not the
            // layer's: registry-image skips "." too, and umoci keeps the root's times.
            return
        }
        switch header.kind {
        case .directory:
            try directory(path, header)
        case .regular:
            try regularFile(path, header, reader)
        case .symbolicLink:
            try symbolicLink(path, header)
        case .hardLink:
            try hardLink(path, header)
        case .characterDevice, .blockDevice:
            try device(path, header)
        case .fifo:
            try fifo(path, header)
        case .other(let flag):
            skip(
                header.name,
                "entry type \(quoted(String(UnicodeScalar(flag)))) is not a file, directory, link, device or fifo")
        }
    }

    private func directory(_ path: RootPath, _ header: TarHeader) throws(UnpackError) {
        let placement = try root.placement(of: path, createMissing: true)
        noteChange(in: placement.parent, at: placement.parentPath)
        if let existing = try root.status(placement), existing.st_mode & S_IFMT == S_IFDIR {
            if !privileged && existing.st_mode & 0o700 != 0o700 {
                // Rootless: keep our own access until the layer is done; the mode from
                // the header is set at the end.
                _ = fchmodat(placement.parent.fd, placement.name, (existing.st_mode & 0o7777) | 0o700, 0)
            }
        } else {
            try root.remove(placement)
            guard mkdirat(placement.parent.fd, placement.name, 0o700) == 0 else {
                throw failure("cannot create directory /\(placement.path)")
            }
        }
        markUpper(placement.path)
        record(placement.path, header)
    }

    private func regularFile(_ path: RootPath, _ header: TarHeader, _ reader: TarReader) throws(UnpackError) {
        let placement = try root.placement(of: path, createMissing: true)
        noteChange(in: placement.parent, at: placement.parentPath)
        // Whatever is there goes first: writing into an existing name would follow a link
        // planted there, write through a hardlink into another file, or block on a fifo.
        try root.remove(placement)
        let fd = openat(
            placement.parent.fd, placement.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("cannot create /\(placement.path)") }
        defer { close(fd) }
        var written: Int64 = 0
        while true {
            let count: Int
            do {
                count = try reader.readBody(into: buffer)
            } catch {
                throw UnpackError(.unreadableLayer, "cannot read the file's contents from the layer: \(error)")
            }
            if count == 0 { break }
            var offset = 0
            while offset < count {
                let result = write(fd, buffer.baseAddress! + offset, count - offset)
                if result < 0 {
                    if errno == EINTR { continue }
                    throw failure("cannot write /\(placement.path)")
                }
                offset += result
            }
            written += Int64(count)
        }
        guard written == header.size else {
            throw UnpackError(
                .unreadableLayer, "the layer holds \(written) bytes for this file but its header says \(header.size)")
        }
        if options.preserveOwnership, fchown(fd, uid_t(clamping: header.uid), gid_t(clamping: header.gid)) != 0 {
            try ownershipFailed(placement.path, header)
        }
        // After the chown, which clears set-user-ID and set-group-ID bits.
        guard fchmod(fd, mode_t(header.mode & 0o7777)) == 0 else {
            throw failure("cannot set the mode of /\(placement.path)")
        }
        applyExtendedAttributes(header, fd: fd, path: placement.path)
        var times = [timespec(header.modificationTime), timespec(header.modificationTime)]
        guard futimens(fd, &times) == 0 else { throw failure("cannot set the times of /\(placement.path)") }
        markUpper(placement.path)
    }

    /// Extended attributes a file may carry out of an image: file capabilities
    /// (`security.capability`, so `ping` and `newuidmap` keep working) and the `user.`
    /// namespace. Never `trusted.*` (`trusted.overlay.opaque` or `.redirect` would change
    /// what an overlay mount built on this root shows), nor `security.selinux` and other
    /// host policy, nor `system.*` ACLs that would grant host users access.
    static func allowsExtendedAttribute(_ name: String) -> Bool {
        name == "security.capability" || (name.hasPrefix("user.") && name.count > 5)
    }

    #if os(Linux)
        private typealias SetAttribute =
            @convention(c) (Int32, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
        /// glibc's `fsetxattr`, which Swift's Glibc module does not export (sys/xattr.h is not in
        /// its module map), looked up by name with its C signature.
        private static var fsetxattr: SetAttribute? {
            dlsym(nil, "fsetxattr").map { unsafeBitCast($0, to: SetAttribute.self) }
        }
    #endif

    private func applyExtendedAttributes(_ header: TarHeader, fd: Int32, path: RootPath) {
        #if os(Linux)
            for (name, value) in header.extendedAttributes.sorted(by: { $0.key < $1.key }) {
                guard LayerApplier.allowsExtendedAttribute(name) else {
                    options.log.debug(
                        "ignored extended attribute \(quoted(name)) on /\(path): not one an image may set")
                    continue
                }
                guard let setAttribute = LayerApplier.fsetxattr else { return }
                let result = value.withUnsafeBytes { setAttribute(fd, name, $0.baseAddress, $0.count, 0) }
                if result != 0 && xattrWarning == nil {
                    // Capabilities need root; some file systems have no xattrs. The file is still
                    // usable, so say it once and go on, as umoci does.
                    xattrWarning =
                        "cannot set extended attribute \(quoted(name)) on /\(path) (\(errnoText(errno))); further failures are not reported"
                    options.log.info(xattrWarning!)
                }
            }
        #endif
    }

    private func symbolicLink(_ path: RootPath, _ header: TarHeader) throws(UnpackError) {
        // The target is stored exactly as written and never followed while unpacking: it
        // may name the host's files, and only means the image's once the root is a root.
        let target = header.linkName
        guard !target.isEmpty else {
            throw UnpackError(.badSymlink, "refused: a symbolic link with an empty target")
        }
        guard !target.utf8.contains(0), target.utf8.count <= RootPath.maximumLength else {
            throw UnpackError(
                .badSymlink, "refused: the link target has a NUL byte or is longer than \(RootPath.maximumLength) bytes"
            )
        }
        let placement = try root.placement(of: path, createMissing: true)
        noteChange(in: placement.parent, at: placement.parentPath)
        try root.remove(placement)
        guard symlinkat(target, placement.parent.fd, placement.name) == 0 else {
            throw failure("cannot create the symbolic link /\(placement.path)")
        }
        try finishSpecial(placement, header, setMode: false)
    }

    private func hardLink(_ path: RootPath, _ header: TarHeader) throws(UnpackError) {
        // Targets are names in the root, parsed and resolved like entry names; the last
        // component is not followed, so a link to a symbolic link is a second name for that
        // link (as link(2) does), never for what it points to.
        let targetPath = try RootPath.parse(header.linkName, what: "the hardlink target")
        guard !targetPath.isRoot else {
            throw UnpackError(.badHardlink, "refused: a hardlink to the root directory")
        }
        if skippedDevices.contains(targetPath.description) {
            skippedDevices.insert(path.description)
            skip(header.name, "hardlink to a device node that was not created")
            return
        }
        let target: Placement
        do {
            target = try root.placement(of: targetPath, createMissing: false)
        } catch {
            throw UnpackError(
                .badHardlink,
                "refused: the hardlink target \(quoted(header.linkName)) does not exist inside the root (\(error.message))"
            )
        }
        guard let targetInfo = try root.status(target) else {
            throw UnpackError(
                .badHardlink,
                "refused: the hardlink target \(quoted(header.linkName)) does not exist inside the root; a hardlink can only name a file this or an earlier layer made"
            )
        }
        guard targetInfo.st_mode & S_IFMT != S_IFDIR else {
            throw UnpackError(.badHardlink, "refused: the hardlink target \(quoted(header.linkName)) is a directory")
        }
        let placement = try root.placement(of: path, createMissing: true)
        noteChange(in: placement.parent, at: placement.parentPath)
        if let existing = try root.status(placement), existing.st_dev == targetInfo.st_dev,
            existing.st_ino == targetInfo.st_ino
        {
            markUpper(placement.path)
            return
        }
        try root.remove(placement)
        guard linkat(target.parent.fd, target.name, placement.parent.fd, placement.name, 0) == 0 else {
            throw failure("cannot link /\(placement.path) to /\(target.path)")
        }
        markUpper(placement.path)
    }

    private func device(_ path: RootPath, _ header: TarHeader) throws(UnpackError) {
        guard options.createDeviceNodes else {
            skippedDevices.insert(path.description)
            skip(header.name, "device node (creating devices is off: not running as root)")
            return
        }
        let placement = try root.placement(of: path, createMissing: true)
        noteChange(in: placement.parent, at: placement.parentPath)
        try root.remove(placement)
        let type: mode_t = header.kind == .blockDevice ? S_IFBLK : S_IFCHR
        let device = makeDevice(header.deviceMajor, header.deviceMinor)
        guard mknodat(placement.parent.fd, placement.name, type | mode_t(header.mode & 0o777), device) == 0 else {
            if errno == EPERM {
                // Root in a user namespace (a Concourse container) may not make devices.
                skippedDevices.insert(path.description)
                skippedDevices.insert(placement.path.description)
                skip(header.name, "device node (the kernel refused: EPERM)")
                return
            }
            throw failure("cannot create the device node /\(placement.path)")
        }
        try finishSpecial(placement, header, setMode: true)
    }

    private func fifo(_ path: RootPath, _ header: TarHeader) throws(UnpackError) {
        let placement = try root.placement(of: path, createMissing: true)
        noteChange(in: placement.parent, at: placement.parentPath)
        try root.remove(placement)
        guard mknodat(placement.parent.fd, placement.name, S_IFIFO | mode_t(header.mode & 0o777), 0) == 0 else {
            throw failure("cannot create the fifo /\(placement.path)")
        }
        try finishSpecial(placement, header, setMode: true)
    }

    /// Owner, mode and times of something just created that cannot be opened safely
    /// (a link, device or fifo), set through its parent without following it.
    private func finishSpecial(_ placement: Placement, _ header: TarHeader, setMode: Bool) throws(UnpackError) {
        let fd = placement.parent.fd
        if options.preserveOwnership,
            fchownat(fd, placement.name, uid_t(clamping: header.uid), gid_t(clamping: header.gid), AT_SYMLINK_NOFOLLOW)
                != 0
        {
            try ownershipFailed(placement.path, header)
        }
        // fchmodat follows links, so only for the device or fifo just made, never a link.
        if setMode, fchmodat(fd, placement.name, mode_t(header.mode & 0o7777), 0) != 0 {
            throw failure("cannot set the mode of /\(placement.path)")
        }
        var times = [timespec(header.modificationTime), timespec(header.modificationTime)]
        guard utimensat(fd, placement.name, &times, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw failure("cannot set the times of /\(placement.path)")
        }
        markUpper(placement.path)
    }

    // MARK: Whiteouts

    private func whiteout(_ path: RootPath, _ name: String) throws(UnpackError) {
        if name == ".wh..wh..opq" {
            try opaque(path.parent)
            return
        }
        if name.hasPrefix(".wh..wh.") {
            // AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs) that old Docker layers carry.
            skip(path.description, "AUFS metadata")
            return
        }
        let hidden = String(name.dropFirst(".wh.".count))
        guard !hidden.isEmpty, hidden != ".", hidden != ".." else {
            throw UnpackError(
                .badWhiteout, "refused: a whiteout must name a file in its directory, not \(quoted(hidden))")
        }
        let placement: Placement
        do {
            placement = try root.placement(of: path.parent.appending(hidden), createMissing: false)
        } catch  where error.kind == .fileSystem || error.kind == .notADirectory {
            return  // Nothing there to hide.
        }
        guard let info = try root.status(placement) else { return }
        noteChange(in: placement.parent, at: placement.parentPath)
        if !upperPaths.contains(placement.path.description) {
            try root.remove(placement)
        } else if info.st_mode & S_IFMT == S_IFDIR {
            // This layer made the directory too: keep its entries, drop the lower ones.
            try clearLower(placement)
        }
    }

    private func opaque(_ directory: RootPath) throws(UnpackError) {
        if directory.isRoot {
            try clearLower(in: root.handle.fd, at: .root)
            return
        }
        let placement: Placement
        do {
            placement = try root.placement(of: directory, createMissing: false)
        } catch  where error.kind == .fileSystem || error.kind == .notADirectory {
            return
        }
        guard let info = try root.status(placement), info.st_mode & S_IFMT == S_IFDIR else { return }
        try clearLower(placement)
    }

    private func clearLower(_ placement: Placement) throws(UnpackError) {
        let fd = openat(placement.parent.fd, placement.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open /\(placement.path) to apply a whiteout") }
        defer { close(fd) }
        try clearLower(in: fd, at: placement.path)
    }

    /// Removes everything below a directory that this layer did not make.
    private func clearLower(in fd: Int32, at path: RootPath) throws(UnpackError) {
        var changed = false
        for child in try root.listDirectory(fd, at: path) {
            let childPath = path.appending(child.name)
            if upperPaths.contains(childPath.description) {
                if child.isDirectory {
                    try clearLower(
                        Placement(parent: DirectoryHandle(fd: fd, owned: false), parentPath: path, name: child.name))
                }
                continue
            }
            if !changed {
                noteChange(in: DirectoryHandle(fd: fd, owned: false), at: path)
                changed = true
            }
            try root.remove(
                Placement(parent: DirectoryHandle(fd: fd, owned: false), parentPath: path, name: child.name))
        }
    }

    // MARK: Directory metadata

    /// Remembers a directory's times before an entry is added to or removed from it, so
    /// they can be put back: only the layer's own entries say what a directory's times are
    /// (umoci does the same).
    private func noteChange(in directory: DirectoryHandle, at path: RootPath) {
        let key = path.description
        guard directories[key] == nil else { return }
        var info = stat()
        guard fstat(directory.fd, &info) == 0 else { return }
        var state = DirectoryState(path: path, times: (info.accessTime, info.modificationTime))
        if !privileged && info.st_mode & 0o300 != 0o300 {
            // Rootless: a read-only directory from a lower layer must be writable while
            // this layer changes it; its mode is put back at the end.
            if changeMode(directory, (info.st_mode & 0o7777) | 0o700) {
                state.mode = info.st_mode & 0o7777
            }
        }
        directories[key] = state
    }

    /// Takes a directory entry's metadata, to be set at the end of the layer.
    private func record(_ path: RootPath, _ header: TarHeader) {
        let key = path.description
        var state = directories[key] ?? DirectoryState(path: path)
        state.mode = mode_t(header.mode & 0o7777)
        state.owner = (uid_t(clamping: header.uid), gid_t(clamping: header.gid))
        state.times = (timespec(header.modificationTime), timespec(header.modificationTime))
        directories[key] = state
    }

    /// Sets the recorded owner, mode and times of every directory the layer touched.
    /// Setting them changes no other directory's times, so the order does not matter.
    func finishDirectories() throws(UnpackError) {
        for state in directories.values {
            if state.path.isRoot {
                try finish(state, fd: root.handle.fd, name: nil)
                continue
            }
            // Re-resolved: a later entry may have removed or replaced it.
            guard let placement = try? root.placement(of: state.path, createMissing: false),
                let info = try? root.status(placement), info.st_mode & S_IFMT == S_IFDIR
            else { continue }
            try finish(state, fd: placement.parent.fd, name: placement.name)
        }
        directories = [:]
    }

    private func finish(_ state: DirectoryState, fd: Int32, name: String?) throws(UnpackError) {
        let display = "/\(state.path)"
        if let owner = state.owner, options.preserveOwnership {
            let result =
                name.map { fchownat(fd, $0, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) }
                ?? fchown(fd, owner.uid, owner.gid)
            if result != 0 {
                try ownershipFailed(state.path, uid: Int(owner.uid), gid: Int(owner.gid))
            }
        }
        if let mode = state.mode {
            // Checked to be a directory just now, and nothing else changes the root meanwhile.
            let result = name.map { fchmodat(fd, $0, mode, 0) } ?? fchmod(fd, mode)
            guard result == 0 else { throw failure("cannot set the mode of \(display)") }
        }
        if var times = state.times.map({ [$0.access, $0.modification] }) {
            let result = name.map { utimensat(fd, $0, &times, AT_SYMLINK_NOFOLLOW) } ?? futimens(fd, &times)
            guard result == 0 else { throw failure("cannot set the times of \(display)") }
        }
    }

    // MARK: Helpers

    private func markUpper(_ path: RootPath) {
        var components = path.components
        while !components.isEmpty {
            let (inserted, _) = upperPaths.insert(components.joined(separator: "/"))
            if !inserted { break }
            components.removeLast()
        }
    }

    private func skip(_ name: String, _ why: String) {
        skippedCount += 1
        if skippedNames.count < 5 { skippedNames.append(name) }
        options.log.debug("skipped \(quoted(name)): \(why)")
    }

    func logSkipped() {
        guard skippedCount > 0 else { return }
        let shown = skippedNames.map(quoted).joined(separator: ", ")
        let more = skippedCount > skippedNames.count ? " and \(skippedCount - skippedNames.count) more" : ""
        options.log.info(
            "skipped \(skippedCount) layer entr\(skippedCount == 1 ? "y" : "ies") that cannot be created here (device nodes when not root, unknown types, AUFS metadata): \(shown)\(more)"
        )
    }

    private func ownershipFailed(_ path: RootPath, _ header: TarHeader) throws(UnpackError) {
        try ownershipFailed(path, uid: header.uid, gid: header.gid)
    }

    /// Root in a user namespace cannot give files to ids outside its map (EINVAL) and some
    /// file systems refuse chown (EPERM): the rootfs is still usable, so say it once and go on.
    private func ownershipFailed(_ path: RootPath, uid: Int, gid: Int) throws(UnpackError) {
        let code = errno
        guard code == EINVAL || code == EPERM else {
            throw failure("cannot set the owner of /\(path) to \(uid):\(gid)")
        }
        if ownershipWarning == nil {
            let warning =
                "cannot give /\(path) to \(uid):\(gid) (\(errnoText(code))); ownership is not preserved where the kernel refuses it"
            ownershipWarning = warning
            options.log.info(warning)
        }
    }

    private func failure(_ what: String) -> UnpackError {
        UnpackError(.fileSystem, "\(what): \(errnoText(errno))")
    }

    private func describe(_ kind: TarHeader.Kind) -> String {
        switch kind {
        case .regular: "a regular file"
        case .hardLink: "a hardlink"
        case .symbolicLink: "a symbolic link"
        case .characterDevice: "a character device"
        case .blockDevice: "a block device"
        case .directory: "a directory"
        case .fifo: "a fifo"
        case .other(let flag): "an entry of type \(quoted(String(UnicodeScalar(flag))))"
        }
    }
}

/// chmod through a descriptor that may be `O_PATH` (which `fchmod` rejects): via its
/// `/proc/self/fd` name, which names that very inode and is not a path anyone can swap.
private func changeMode(_ directory: DirectoryHandle, _ mode: mode_t) -> Bool {
    if fchmod(directory.fd, mode) == 0 { return true }
    #if os(Linux)
        return chmod("/proc/self/fd/\(directory.fd)", mode) == 0
    #else
        return false
    #endif
}

private func makeDevice(_ major: UInt32, _ minor: UInt32) -> dev_t {
    #if os(Linux)
        // glibc's makedev() is a macro Swift cannot import; this is its definition.
        let major = UInt64(major)
        let minor = UInt64(minor)
        return dev_t(
            ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff))
    #else
        return makedev(Int32(major), Int32(minor))
    #endif
}

extension timespec {
    init(_ date: Date) {
        let interval = date.timeIntervalSince1970
        var seconds = interval.rounded(.down)
        var nanoseconds = ((interval - seconds) * 1_000_000_000).rounded()
        if nanoseconds >= 1_000_000_000 {
            seconds += 1
            nanoseconds -= 1_000_000_000
        }
        self.init(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds))
    }
}

extension stat {
    var accessTime: timespec {
        #if canImport(Darwin)
            st_atimespec
        #else
            st_atim
        #endif
    }

    var modificationTime: timespec {
        #if canImport(Darwin)
            st_mtimespec
        #else
            st_mtim
        #endif
    }
}
