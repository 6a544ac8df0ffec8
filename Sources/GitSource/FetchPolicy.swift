/// How much history the clone cache fetches, and when it tidies itself.
///
/// A first check fetches only the newest ``initialDepth`` commits of the branch (no file
/// contents at all: a blobless partial clone), and doubles that window while the answer
/// needs older history (the newest matching commit is older, or the given version is not
/// in the window yet), four times larger each round. Past ``completeHistoryAbove`` commits it fetches the complete
/// history once and writes a commit-graph with changed-path Bloom filters, from then on
/// the cache stays complete and path-limited walks over it stay fast.
public struct FetchPolicy: Sendable, Equatable {
    /// Commits in the first window.
    public var initialDepth: Int
    /// The window size beyond which the complete history is fetched instead of a deeper
    /// window (a shallow repository cannot have a commit-graph, so very deep windows walk
    /// slowly).
    public var completeHistoryAbove: Int
    /// Repack (geometrically) when this many loose objects have piled up from fetches.
    public var repackAboveLooseObjects: Int
    /// Repack (geometrically) when there are more pack files than this.
    public var repackAbovePacks: Int

    /// Creates a policy.
    public init(
        initialDepth: Int = 128, completeHistoryAbove: Int = 4096, repackAboveLooseObjects: Int = 2000,
        repackAbovePacks: Int = 24
    ) {
        self.initialDepth = max(1, initialDepth)
        self.completeHistoryAbove = max(self.initialDepth, completeHistoryAbove)
        self.repackAboveLooseObjects = repackAboveLooseObjects
        self.repackAbovePacks = repackAbovePacks
    }

    /// The defaults: a window of 128 commits, complete history beyond 4096.
    public static let `default` = FetchPolicy()
}
