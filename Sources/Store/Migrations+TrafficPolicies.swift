import GRDB

extension Migrations {
    /// `v3-traffic-policies`: one traffic policy per service name (Istio VirtualService and
    /// DestinationRule settings as JSON). Not tied to the service row: like an Istio resource,
    /// a policy may be written before its service exists and outlives its deletion.
    static func registerTrafficPolicies(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3-traffic-policies") { db in
            try db.execute(sql: """
                CREATE TABLE trafficPolicy (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    uid TEXT NOT NULL UNIQUE,
                    generation INTEGER NOT NULL,
                    resourceVersion INTEGER NOT NULL,
                    spec TEXT NOT NULL,
                    createdAt DATETIME NOT NULL,
                    updatedAt DATETIME NOT NULL,
                    UNIQUE (namespace, name)
                );
                """)
        }
    }

    /// `v8-rate-limit-fill-default`: a rate limit's `tokensPerFill` defaulted to `maxTokens`
    /// and now defaults to 1 (Envoy's); policies stored without it keep the refill they had.
    static func registerRateLimitFillDefault(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v8-rate-limit-fill-default") { db in
            try db.execute(sql: """
                UPDATE trafficPolicy
                SET spec = json_set(spec, '$.rateLimit.tokensPerFill', json_extract(spec, '$.rateLimit.maxTokens'))
                WHERE json_extract(spec, '$.rateLimit.maxTokens') IS NOT NULL
                  AND json_extract(spec, '$.rateLimit.tokensPerFill') IS NULL;
                """)
        }
    }
}
