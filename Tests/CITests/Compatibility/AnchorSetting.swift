import Foundation
import TestSupport

/// One documented setting of a tool Slipway replaces, and what Slipway does with it.
///
/// The list (`AnchorSetting.all`, in `AnchorSettings.swift`) is the source of docs/compatibility.md's
/// compatibility table: `CompatibilityTableTests` plays every entry's probe against the
/// built binaries and renders the table from the entries, so neither can drift.
struct AnchorSetting: Sendable {
    /// Which tool, and which part of its configuration.
    enum Anchor: String, Sendable, CaseIterable {
        case registryImageSource = "registry-image `source`"
        case registryImageGet = "registry-image `get` params"
        case registryImagePut = "registry-image `put` params"
        case ociBuildTask = "oci-build-task params (environment)"
    }

    /// What Slipway does with the setting.
    enum Verdict: Sendable {
        /// Accepted with the anchor's meaning. `provenBy` names the test (`Suite.function`)
        /// that shows the meaning end to end; the table test checks it exists.
        case same(provenBy: String)
        /// Refused in one line that contains `because`.
        case refused(because: String)
    }

    /// How to show the setting to the binary: the probe runs it, and the verdict says what
    /// must come back (exit 0 for `same`; exit non-zero with one line naming the setting and
    /// the reason for `refused`).
    enum Probe: Sendable {
        /// `check` with these extra `source` keys (a JSON fragment, no braces).
        case check(source: String)
        /// `in` (format `oci-layout` unless `params` says otherwise) of the probe image.
        case get(source: String = "", params: String)
        /// `out` of the probe image from an OCI layout, to a fresh repository.
        case put(source: String = "", params: String)
        /// `build-task` on the probe context, with these extra environment variables.
        case build([String: String])
        /// Anything the cases above cannot say: a probe of its own.
        case custom(@Sendable (CompatibilityWorld) throws -> ProcessResult)
        /// A probe whose setting sends it to a host no test can reach (a registry named after
        /// an AWS account): it shows the setting was used when its output names `host`.
        case reaches(host: String, @Sendable (CompatibilityWorld) throws -> ProcessResult)
    }

    let anchor: Anchor
    /// The key or variable as the anchor spells it (`BUILD_ARG_*` for a family).
    let name: String
    /// Where the anchor documents it: file and section.
    let origin: String
    let verdict: Verdict
    /// A difference worth a word in the table, or nil.
    let note: String?
    let probe: Probe

    init(_ anchor: Anchor, _ name: String, from origin: String, _ verdict: Verdict, note: String? = nil, probe: Probe) {
        self.anchor = anchor
        self.name = name
        self.origin = origin
        self.verdict = verdict
        self.note = note
        self.probe = probe
    }
}
