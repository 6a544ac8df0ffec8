// placeholder: arrives with issue 3
