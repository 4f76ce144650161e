module github.com/edulure/edulure/sdk

go 1.26
