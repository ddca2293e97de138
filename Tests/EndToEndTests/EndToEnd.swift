import Testing

/// Every end-to-end suite runs inside this one, one test at a time: each starts real daemons,
/// workers and load, and two cores cannot run several such tests side by side without the
/// timing-sensitive ones (autoscaling, rollout) measuring the contention instead of Outpost.
@Suite(.serialized) enum EndToEnd {}
