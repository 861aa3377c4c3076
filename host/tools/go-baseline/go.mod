module rds-forwarder/go-baseline

go 1.19
