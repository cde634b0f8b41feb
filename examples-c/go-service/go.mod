module github.com/pgpool/pgpool/examples-c/go-service

go 1.21

require github.com/pgpool/pgpool/go v0.0.0

replace github.com/pgpool/pgpool/go => ../../go
