package cdc

// MigrationStep is what one statement of a migration does to the tables, as a
// source predicts it from the statement's text with its database's own
// grammar (cdc check-migration), before the migration runs anywhere.
type MigrationStep struct {
	// Line is the statement's first line in its file; Text is the statement.
	Line int
	Text string
	// Changed holds the tables the statement creates or whose columns or
	// keys it changes, as they are after it.
	Changed []*Table
	// Breaks holds, with why, the tables the statement changes in a way no
	// topic can follow, or that cannot be predicted: rows removed or
	// replaced without row events (DROP, TRUNCATE, a rename away, attaching
	// or detaching a partition), a replica identity the source cannot serve,
	// a change the source does not understand.
	Breaks map[TableName]string
}
