// placeholder: arrives with issue 6
