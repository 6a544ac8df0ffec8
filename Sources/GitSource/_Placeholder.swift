// placeholder: the GitSource module arrives with issue 4
