package db

// ListQuery exposes the page query builder to db_test's plan checks.
var ListQuery = listQuery
