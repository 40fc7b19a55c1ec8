module example.com/kestrelexample

go 1.19
