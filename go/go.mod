module github.com/pgpool/pgpool/go

go 1.21
